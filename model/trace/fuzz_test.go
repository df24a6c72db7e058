package trace

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzTraceLine: a parsed line re-serialises to an equivalent line.
func FuzzTraceLine(f *testing.F) {
	for _, s := range []string{
		`{"op":"user","user":"alice","password":"good","role":"admin"}`,
		`{"at":"0s","user":"alice","source":"10.0.0.2","password":"bad"}`,
		`{"at":"30s","op":"unlock","user":"alice"}`,
		`{"at":"1h","op":"wall_jump","by":"-8760h"}`,
		`{"at":"1d2h","user":"a","channel":"console","password":"1234","second_factor":"fail"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLine(b)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := NewWriter(&buf).Write(l); err != nil {
			t.Fatal(err)
		}
		l2, err := ParseLine(bytes.TrimSpace(buf.Bytes()))
		if err != nil {
			t.Fatalf("re-serialised line does not parse: %v\n%s", err, buf.Bytes())
		}
		a, _ := json.Marshal(l)
		c, _ := json.Marshal(l2)
		if !bytes.Equal(a, c) {
			t.Fatalf("not equivalent:\n%s\n%s", a, c)
		}
	})
}
