package main

// The console commands against a running `latch serve` on the same data
// folder (issue #5, SPEC R-CONSOLE): the server is a child process (this
// test binary re-executed as `latch`), the console commands run in this
// process through run(), as two programs share a device on a real box.
// Nothing here sleeps or reads the clock to decide: the test waits for the
// server's "latch serving" log line and for HTTP answers.

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childArgsEnv carries the arguments of a re-executed test binary that is
// to behave as the latch command.
const childArgsEnv = "LATCH_CLI_TEST_ARGS"

func TestMain(m *testing.M) {
	if a := os.Getenv(childArgsEnv); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(run(args, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const (
	cliAdmin = "admin"
	cliPW    = "correct-horse-battery-staple-42"
	cliPIN   = "493817"
)

// server is a `latch serve` child process.
type server struct {
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
	done chan error
}

// startServe runs `latch serve` on data with cheap hashing and one small
// camera and returns once it listens.
func startServe(t *testing.T, data string) *server {
	t.Helper()
	args, _ := json.Marshal([]string{"serve", "--listen", "127.0.0.1:0", "--data", data,
		"--cameras", "1", "--fps", "1", "--width", "160", "--height", "90",
		"--argon-memory", "64", "--argon-time", "1", "--preset", "latch"})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(args))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: &bytes.Buffer{}, done: make(chan error, 1)}
	urlRE := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+)/`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.logs.WriteString(line + "\n")
			if m := urlRE.FindStringSubmatch(line); m != nil {
				found <- m[1]
			}
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	select {
	case s.url = <-found:
	case err := <-s.done:
		t.Fatalf("latch serve exited before listening: %v\n%s", err, s.logs)
	case <-time.After(2 * time.Minute): // a bound on a hang, not a timing
		t.Fatalf("latch serve did not listen\n%s", s.logs)
	}
	return s
}

// stop sends SIGTERM and requires a clean exit (graceful shutdown).
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-s.done; err != nil {
		t.Fatalf("latch serve after SIGTERM: %v\n%s", err, s.logs)
	}
}

func (s *server) post(t *testing.T, path string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// latch runs one console command in this process with stdin as its input.
func latch(stdin string, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, strings.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

func mustLatch(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	code, out, errOut := latch(stdin, args...)
	if code != 0 {
		t.Fatalf("latch %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func TestConsoleBesideRunningServer(t *testing.T) {
	data := t.TempDir()

	// No device yet: the console says what to do instead of creating one.
	if code, _, e := latch("", "status", "--data", filepath.Join(data, "nowhere")); code == 0 || !strings.Contains(e, "run `latch serve") {
		t.Fatalf("status without a device: exit %d, %q", code, e)
	}

	s := startServe(t, data)
	if out := mustLatch(t, "", "status", "--data", data); !strings.Contains(out, "NOT ACTIVATED") {
		t.Fatalf("status before activation:\n%s", out)
	}
	if code, _, e := latch(cliPIN+"\n", "unlock", cliAdmin, "--data", data); code == 0 || !strings.Contains(e, "device not activated") {
		t.Fatalf("unlock before activation: exit %d, %q", code, e)
	}
	if code, body := s.post(t, "/api/v1/activate", map[string]string{"username": cliAdmin, "password": cliPW, "pin": cliPIN}); code != http.StatusCreated {
		t.Fatalf("activate: %d %v", code, body)
	}

	// Lock the admin out of this address over HTTP.
	locked := false
	for i := 0; i < 20 && !locked; i++ {
		code, body := s.post(t, "/api/v1/login", map[string]string{"username": cliAdmin, "password": fmt.Sprintf("wrong-%d", i)})
		switch code {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			locked = true
			if body["error"] != "locked" {
				t.Fatalf("429 body %v", body)
			}
		default:
			t.Fatalf("wrong login %d: %d %v", i, code, body)
		}
	}
	if !locked {
		t.Fatal("20 wrong passwords never locked the admin")
	}
	if code, _ := s.post(t, "/api/v1/login", map[string]string{"username": cliAdmin, "password": cliPW}); code != http.StatusTooManyRequests {
		t.Fatalf("right password while locked: %d, want 429", code)
	}

	// The console sees the lock the server wrote.
	st := mustLatch(t, "", "status", "--data", data)
	if !strings.Contains(st, "activated") || !regexp.MustCompile(`pair\s+admin\s+127\.0\.0\.1\s+Locked`).MatchString(st) {
		t.Fatalf("status does not show the pair lock:\n%s", st)
	}

	// R-CONSOLE: a wrong PIN is refused with the tries left, the right one unlocks.
	if code, _, e := latch("000000\n", "unlock", cliAdmin, "--data", data); code == 0 || !strings.Contains(e, "wrong master PIN") {
		t.Fatalf("unlock with a wrong PIN: exit %d, %q", code, e)
	}
	if out := mustLatch(t, cliPIN+"\n", "unlock", cliAdmin, "--data", data); !strings.Contains(out, "unlocked:") {
		t.Fatalf("unlock: %s", out)
	}
	if code, body := s.post(t, "/api/v1/login", map[string]string{"username": cliAdmin, "password": cliPW}); code != http.StatusOK {
		t.Fatalf("login after the console unlock: %d %v", code, body)
	}

	// Users: the PIN, then the new user's password, both from stdin.
	if out := mustLatch(t, cliPIN+"\ntrain-lantern-orbit-velvet-91\n", "user", "add", "bob", "--role", "operator", "--data", data); !strings.Contains(out, "added bob (operator)") {
		t.Fatalf("user add: %s", out)
	}
	if code, _, e := latch(cliPIN+"\npassword\n", "user", "add", "eve", "--data", data); code == 0 || !strings.Contains(strings.ToLower(e), "password") {
		t.Fatalf("user add with a weak password: exit %d, %q", code, e)
	}
	if out := mustLatch(t, "", "user", "list", "--data", data); !regexp.MustCompile(`bob\s+operator`).MatchString(out) || strings.Contains(out, "eve") {
		t.Fatalf("user list:\n%s", out)
	}
	if code, body := s.post(t, "/api/v1/login", map[string]string{"username": "bob", "password": "train-lantern-orbit-velvet-91"}); code != http.StatusOK || body["role"] != "operator" {
		t.Fatalf("bob's login through the server: %d %v", code, body)
	}

	// The auth log, as CSV: the wrong secrets, the lock and the unlock.
	rows, err := csv.NewReader(strings.NewReader(mustLatch(t, "", "log", "--data", data, "--format", "csv", "-n", "200"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, r := range rows[1:] {
		outcomes[r[6]]++
	}
	if outcomes["wrong_secret"] == 0 || outcomes["unlock"] == 0 || outcomes["success"] < 2 {
		t.Fatalf("log outcomes %v\n%v", outcomes, rows)
	}
	if code, _, e := latch("", "log", "--data", data, "--format", "xml"); code != 2 || !strings.Contains(e, "--format") {
		t.Fatalf("log --format xml: exit %d, %q", code, e)
	}

	// A broken policy file is named with its line and column, and nothing changes.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("pair:\n  threshold: many\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, e := latch("", "policy", "validate", "--policy", bad); code == 0 || !strings.Contains(e, "line 2, column 14") || !strings.Contains(e, "pair.threshold") {
		t.Fatalf("policy validate of a broken file: exit %d, %q", code, e)
	}

	// Factory reset keeps recordings and returns the device to activation;
	// the running server sees it.
	if code, _, e := latch("no\n", "factory-reset", "--data", data); code == 0 || !strings.Contains(e, "not confirmed") {
		t.Fatalf("unconfirmed factory reset: exit %d, %q", code, e)
	}
	if out := mustLatch(t, "RESET\n"+cliPIN+"\n", "factory-reset", "--data", data); !strings.Contains(out, "recordings kept") {
		t.Fatalf("factory-reset: %s", out)
	}
	if out := mustLatch(t, "", "status", "--data", data); !strings.Contains(out, "NOT ACTIVATED") {
		t.Fatalf("status after factory reset:\n%s", out)
	}
	if code, _ := s.post(t, "/api/v1/login", map[string]string{"username": "bob", "password": "train-lantern-orbit-velvet-91"}); code == http.StatusOK {
		t.Fatal("bob can still log in after a factory reset")
	}
	s.stop(t)
	if !strings.Contains(s.logs.String(), "latch serving") {
		t.Fatalf("no startup log:\n%s", s.logs)
	}
}

// Flags after a positional argument are flags, not names (a bug this
// file's first test found: `user add bob --role operator --data D` acted
// on ./latch-data).
func TestParseAnywhere(t *testing.T) {
	for _, c := range []struct {
		args      []string
		names     string
		role, dir string
	}{
		{[]string{"bob", "--role", "operator", "--data", "d"}, "bob", "operator", "d"},
		{[]string{"--data", "d", "bob"}, "bob", "viewer", "d"},
		{[]string{"--role=admin", "bob", "alice", "--data", "d"}, "bob,alice", "admin", "d"},
		{[]string{"--data", "d", "--", "--role"}, "--role", "viewer", "d"},
		{[]string{"bob", "--", "-x", "--data"}, "bob,-x,--data", "viewer", "."},
	} {
		fs := (&console{stderr: io.Discard}).flags("t")
		role := fs.String("role", "viewer", "")
		dir := fs.String("data", ".", "")
		names, err := parseAnywhere(fs, c.args)
		if err != nil || strings.Join(names, ",") != c.names || *role != c.role || *dir != c.dir {
			t.Errorf("%q: names %q role %q data %q err %v; want %q %q %q", c.args, names, *role, *dir, err, c.names, c.role, c.dir)
		}
	}
	fs := (&console{stderr: io.Discard}).flags("t")
	if _, err := parseAnywhere(fs, []string{"bob", "--nope"}); err == nil {
		t.Error("an unknown flag after a name was accepted")
	}
}
