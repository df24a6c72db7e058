package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/app"
	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/store"
)

// parseServe parses serve's options as `latch serve` does: flags, then the
// --config file, then the environment.
func parseServe(t *testing.T, args ...string) (app.Config, error) {
	t.Helper()
	cfg := app.Defaults()
	fs := flag.NewFlagSet("latch serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var file string
	serveFlags(fs, &cfg, &file)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	return cfg, applyConfig(fs, file)
}

// --sessions-policy comes from a flag, the YAML file or LATCH_SESSIONS_POLICY
// like every serve option (flags over the environment over the file).
func TestSessionsPolicyOption(t *testing.T) {
	yml := filepath.Join(t.TempDir(), "latch.yaml")
	if err := os.WriteFile(yml, []byte("sessions-policy: allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseServe(t)
	if err != nil || cfg.SessionsPolicy != "" {
		t.Fatalf("default = %q, %v; want \"\" (the device's setting)", cfg.SessionsPolicy, err)
	}
	if cfg, err = parseServe(t, "--sessions-policy", "replace-oldest"); err != nil || cfg.SessionsPolicy != "replace-oldest" {
		t.Fatalf("flag = %q, %v", cfg.SessionsPolicy, err)
	}
	if cfg, err = parseServe(t, "--config", yml); err != nil || cfg.SessionsPolicy != "allow" {
		t.Fatalf("file = %q, %v", cfg.SessionsPolicy, err)
	}
	t.Setenv("LATCH_SESSIONS_POLICY", "notify")
	if cfg, err = parseServe(t, "--config", yml); err != nil || cfg.SessionsPolicy != "notify" {
		t.Fatalf("environment over file = %q, %v", cfg.SessionsPolicy, err)
	}
	if cfg, err = parseServe(t, "--config", yml, "--sessions-policy", "replace-oldest"); err != nil || cfg.SessionsPolicy != "replace-oldest" {
		t.Fatalf("flag over environment = %q, %v", cfg.SessionsPolicy, err)
	}
	t.Setenv("LATCH_SESSIONS_POLICY", "")
	if _, err = parseServe(t, "--sessions-policy", "sometimes"); err == nil || !strings.Contains(err.Error(), "allow, notify or replace-oldest") {
		t.Fatalf("bad flag = %v", err)
	}
	if _, err = parseServe(t); err == nil || !strings.Contains(err.Error(), "LATCH_SESSIONS_POLICY") {
		t.Fatalf("empty environment value = %v, want it named", err)
	}
}

// newDevice makes an activated device in a data folder, with cheap hashes.
func newDevice(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	db, err := store.Open(app.DBPath(data), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := auth.New(db, auth.Config{Hasher: auth.NewHasher(auth.CheapParams, 1), Policy: model.Default()})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if _, err := svc.Activate(context.Background(), cliAdmin, cliPW, cliPIN); err != nil {
		t.Fatal(err)
	}
	return data
}

// `latch user add --email` and `latch user email` give users the address
// self-service recovery mails its codes to (R-RESET).
func TestConsoleUserEmail(t *testing.T) {
	data := newDevice(t)
	mustLatch(t, cliPIN+"\n"+"violet tangerine kayak 42\n", "user", "add", "bob", "--email", "bob@example.com", "--data", data)
	if out := mustLatch(t, "", "user", "list", "--data", data); !strings.Contains(out, "bob@example.com") {
		t.Fatalf("user list:\n%s", out)
	}
	out := mustLatch(t, cliPIN+"\n", "user", "email", "bob", "--email", "robert@example.com", "--data", data)
	if !strings.Contains(out, "robert@example.com") {
		t.Fatalf("user email: %s", out)
	}
	if out := mustLatch(t, "", "user", "list", "--data", data); !strings.Contains(out, "robert@example.com") {
		t.Fatalf("user list after email:\n%s", out)
	}
	if code, _, e := latch(cliPIN+"\n", "user", "email", "bob", "--email", "not an address", "--data", data); code == 0 || !strings.Contains(e, "email address") {
		t.Fatalf("a bad address: exit %d: %s", code, e)
	}
	if code, _, e := latch(cliPIN+"\n", "user", "email", "bob", "--data", data); code != 2 || !strings.Contains(e, "--email") {
		t.Fatalf("no --email: exit %d: %s", code, e)
	}
	mustLatch(t, cliPIN+"\n", "user", "email", "bob", "--email", "", "--data", data)
	if out := mustLatch(t, "", "user", "list", "--data", data); strings.Contains(out, "@") {
		t.Fatalf("the address was not removed:\n%s", out)
	}
}
