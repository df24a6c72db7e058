package world

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/latchnvr/latch/model"
)

var update = flag.Bool("update", false, "rewrite golden files")

func replay(t *testing.T, preset, trace string) []Result {
	t.Helper()
	p, err := model.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	var out []Result
	if err := Run(p, strings.NewReader(trace), func(r Result) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// The SPEC §9 example replays to a committed golden output.
func TestReplayTheSpecExample(t *testing.T) {
	in, err := os.ReadFile("testdata/spec-example.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	res := replay(t, "latch", string(in))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, r := range res {
		enc.Encode(r)
	}
	const golden = "testdata/spec-example.out.jsonl"
	if *update {
		os.WriteFile(golden, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if buf.String() != string(want) {
		t.Fatalf("replay output changed:\n%s\nwant:\n%s", buf.String(), want)
	}
	if got := []string{res[0].Decision, res[1].Decision, res[2].Decision, res[3].Decision, res[4].Decision}; strings.Join(got, ",") != "user,fail,unlock,restart,wall_jump" {
		t.Fatalf("decisions %v", got)
	}
}

func TestR_ENUM_UnknownPrincipalLocksLikeAKnownViewer(t *testing.T) {
	attack := func(user string) string {
		var b strings.Builder
		b.WriteString(`{"op":"user","user":"viewer1","password":"pw-viewer","role":"viewer"}` + "\n")
		for i := 0; i < 12; i++ {
			fmt.Fprintf(&b, `{"at":"%ds","user":"%s","source":"10.0.0.7","password":"guess%d"}`+"\n", i, user, i)
		}
		return b.String()
	}
	known := replay(t, "latch", attack("viewer1"))
	unknown := replay(t, "latch", attack("nobody"))
	for i := 1; i < len(known); i++ {
		k, u := known[i], unknown[i]
		k.User, u.User = "", ""
		kj, _ := json.Marshal(k)
		uj, _ := json.Marshal(u)
		if string(kj) != string(uj) {
			t.Fatalf("line %d: known %s, unknown %s", i+1, kj, uj)
		}
	}
}

func TestR_RESET_OpensPrincipalAndAllItsPairs(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"op":"user","user":"alice","password":"good","role":"operator"}` + "\n")
	for _, src := range []string{"10.0.0.1", "10.0.0.2"} {
		for i := 0; i < 5; i++ {
			b.WriteString(`{"at":"1s","user":"alice","source":"` + src + `","password":"bad` + string(rune('a'+i)) + `"}` + "\n")
		}
	}
	b.WriteString(`{"at":"2s","op":"reset","user":"alice","password":"new"}` + "\n")
	b.WriteString(`{"at":"3s","user":"alice","source":"10.0.0.1","password":"new"}` + "\n")
	b.WriteString(`{"at":"3s","user":"alice","source":"10.0.0.2","password":"new"}` + "\n")
	res := replay(t, "latch", b.String())
	if res[5].Modes["pair"] != "Locked" || res[10].Modes["pair"] != "Locked" {
		t.Fatalf("pairs not locked before the reset: %+v %+v", res[5], res[10])
	}
	if got := res[12].Decision + "," + res[13].Decision; got != "ok,ok" {
		t.Fatalf("after reset: %s", got)
	}
}

func TestR_FACTORY_ErasesUsersAndKeys(t *testing.T) {
	res := replay(t, "latch", `{"op":"user","user":"alice","password":"good","role":"admin"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b1"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b2"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b3"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b4"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b5"}
{"at":"1s","op":"factory_reset"}
{"at":"2s","user":"alice","source":"10.0.0.2","password":"good"}
`)
	if res[5].Modes["pair"] != "Locked" {
		t.Fatalf("not locked: %+v", res[5])
	}
	// After a factory reset the pair is open and alice no longer exists.
	if r := res[7]; r.Decision != "fail" || r.Modes["pair"] != "Open" || *r.Remaining != 4 {
		t.Fatalf("after factory reset: %+v", r)
	}
}

func TestINV_CLOCK_WallJumpsAndRestartsChangeNoLock(t *testing.T) {
	res := replay(t, "annke", `{"op":"user","user":"alice","password":"good","role":"viewer"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b1"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b2"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b3"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b4"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b5"}
{"at":"1m","op":"wall_jump","by":"8760h"}
{"at":"1m","op":"restart"}
{"at":"2m","user":"alice","source":"10.0.0.2","password":"good"}
{"at":"2m","op":"wall_jump","by":"-480000h"}
{"at":"2m","op":"restart"}
{"at":"4m59s","user":"alice","source":"10.0.0.2","password":"good"}
{"at":"10m","user":"alice","source":"10.0.0.2","password":"good"}
`)
	// Locked at 0s for 5m. Neither a +1 year step nor a restart ends it;
	// the refused try at 2m extends it to 7m (annke: +5m per attempt).
	if r := res[8]; r.Decision != "locked" || durText(r.RetryAfter) != "5m" {
		t.Fatalf("after a +1y jump and restart: %+v", r)
	}
	// A −55 year step and restart neither end nor lengthen it: the try at
	// 4m59s is refused and extends to 9m59s, so 10m is admitted.
	if r := res[11]; r.Decision != "locked" || durText(r.RetryAfter) != "5m" {
		t.Fatalf("after a -55y jump and restart: %+v", r)
	}
	if r := res[12]; r.Decision != "ok" {
		t.Fatalf("at 10m: %+v", r)
	}
}

func durText(d interface{ MarshalJSON() ([]byte, error) }) string {
	b, _ := d.MarshalJSON()
	return strings.Trim(string(b), `"`)
}

func TestConsoleMasterPINUnlocksTheBox(t *testing.T) {
	res := replay(t, "latch", `{"op":"user","user":"admin","password":"good","role":"admin"}
{"op":"device","pin":"4711"}
{"at":"0s","user":"admin","channel":"console","password":"x1"}
{"at":"0s","user":"admin","channel":"console","password":"x2"}
{"at":"0s","user":"admin","channel":"console","password":"x3"}
{"at":"0s","user":"admin","channel":"console","password":"x4"}
{"at":"0s","user":"admin","channel":"console","password":"x5"}
{"at":"1s","user":"admin","channel":"console","password":"4711"}
{"at":"31s","user":"admin","channel":"console","password":"4711"}
`)
	if r := res[7]; r.Decision != "locked" || r.Reason == "" {
		t.Fatalf("console not locked: %+v", r)
	}
	if r := res[8]; r.Decision != "ok" {
		t.Fatalf("master PIN after the console lock: %+v", r)
	}
}

func TestMalformedLineStopsReplayWithItsNumber(t *testing.T) {
	p, _ := model.Preset("latch")
	var n int
	err := Run(p, strings.NewReader(`{"op":"user","user":"a","password":"x"}
{"at":"1s","user":"a","source":"10.0.0.1","password":"y"}
{"at":"2s","user":"a","source":"not-an-address","password":"y"}
{"at":"3s","user":"a","source":"10.0.0.1","password":"y"}
`), func(Result) error { n++; return nil })
	if err == nil || !strings.Contains(err.Error(), "line 3") || n != 2 {
		t.Fatalf("err %v after %d lines", err, n)
	}
}

func TestR_RESTART_WallTimeServedWhileOffCounts(t *testing.T) {
	// nist: the pair locks for 30s after 5 failures and never extends.
	res := replay(t, "nist", `{"op":"user","user":"alice","password":"good","role":"viewer"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b1"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b2"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b3"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b4"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"b5"}
{"at":"10s","op":"restart","by":"10s"}
{"at":"15s","user":"alice","source":"10.0.0.2","password":"good"}
{"at":"16s","op":"restart","by":"-8760h"}
{"at":"18s","user":"alice","source":"10.0.0.2","password":"good"}
{"at":"20s","user":"alice","source":"10.0.0.2","password":"good"}
`)
	// Restarted at 10s having served 10s while off: 10s remained, 5s at 15s.
	if r := res[7]; r.Decision != "locked" || durText(r.RetryAfter) != "5s" {
		t.Fatalf("after a reboot that served 10s: %+v %s", r, durText(r.RetryAfter))
	}
	// An RTC reset to 1970 serves nothing and lengthens nothing.
	if r := res[9]; r.Decision != "locked" || durText(r.RetryAfter) != "2s" {
		t.Fatalf("after an RTC reset: %+v %s", r, durText(r.RetryAfter))
	}
	if r := res[10]; r.Decision != "ok" {
		t.Fatalf("when the lock ends: %+v", r)
	}
}
