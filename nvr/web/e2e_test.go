package web

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium; CHROMIUM overrides it.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// TestBrowserEndToEnd drives a real headless chromium through the UI:
// activate, sign in, add a user, lock that user out from another client
// (plain HTTP requests), see the live countdown on the login page, unlock
// as admin on the Locks page, change the concurrent-session policy on the
// Settings page, and sign in as the user; then lock the user out again and
// recover the account through "Forgot password?" with the code a real SMTP
// server received (R-RESET, while locked).
//
// It never skips: without chromium it fails and says how to install it.
func TestBrowserEndToEnd(t *testing.T) {
	bin := chromiumPath()
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		t.Fatalf("the browser test needs chromium at %s (%v): install it with `apt-get install -y chromium` (CI: .ci/run does), or set CHROMIUM to its path", bin, err)
	}
	began := time.Now()
	r := newRig(t)
	mb := r.startMailbox()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(step string, sel chromedp.CSS) string {
		t.Helper()
		// Wait for the element on a settled page: a navigation in flight
		// would invalidate the node between finding and reading it.
		if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`body[data-ready]`)), chromedp.WaitVisible(sel)); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		v, err := chromedp.Run(bctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return v
	}
	signIn := func(user, pw string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.Navigate(r.ts.URL+"/login"),
			chromedp.WaitVisible(chromedp.CSS(`body[data-ready]`)),
			chromedp.WaitVisible(chromedp.ID("login-form")),
			chromedp.SetValue(chromedp.ID("username"), user),
			chromedp.SetValue(chromedp.ID("password"), pw),
			chromedp.Click(chromedp.ID("login-button")),
		)
	}
	const bobPass = "violet tangerine kayak 42"

	// 1. The fresh device sends the browser to activation.
	do("activate",
		chromedp.Navigate(r.ts.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready]`)),
		chromedp.WaitVisible(chromedp.ID("activate-form")),
		chromedp.SetValue(chromedp.ID("act-username"), "admin"),
		chromedp.SetValue(chromedp.ID("act-password"), adminPW),
		chromedp.SetValue(chromedp.ID("act-password2"), adminPW),
		chromedp.SetValue(chromedp.ID("act-pin"), pin),
		chromedp.Click(chromedp.ID("activate")),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	)

	// 2. Sign in as admin and add bob on the Users page.
	do("admin sign-in", signIn("admin", adminPW), chromedp.WaitVisible(chromedp.CSS(`body[data-page="dashboard"]`)))
	do("add bob",
		chromedp.Navigate(r.ts.URL+"/users"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready]`)),
		chromedp.WaitVisible(chromedp.ID("add-user")),
		chromedp.SetValue(chromedp.CSS(`#add-user input[name="name"]`), "bob"),
		chromedp.SetValue(chromedp.CSS(`#add-user input[name="password"]`), bobPass),
		chromedp.SetValue(chromedp.CSS(`#add-user input[name="email"]`), "bob@example.com"),
		chromedp.Click(chromedp.CSS(`#add-user button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-user="bob"]`)),
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	)

	// 3. Another client (plain HTTP, same address) guesses bob's password
	// until the pair locks.
	attacker := r.client("")
	for i := 0; i < 5; i++ {
		if resp, m := attacker.try("bob", "guess number "+string(rune('a'+i))); resp.StatusCode != 401 {
			t.Fatalf("guess %d: %d %v", i, resp.StatusCode, m)
		}
	}

	// 4. Bob, with the right password, sees the lock and a live countdown.
	do("see countdown", signIn("bob", bobPass), chromedp.WaitVisible(chromedp.ID("lock-message")))
	lockText := text("lock text", "#lock-text")
	count := text("countdown", "#countdown")
	disabled, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.getElementById('login-button').disabled`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lockText, "Too many failed sign-ins") {
		t.Fatalf("lock text %q", lockText)
	}
	if m := regexp.MustCompile(`^(\d+):(\d\d)$`).FindStringSubmatch(count); m == nil || (m[1] == "0" && m[2] == "00") {
		t.Fatalf("countdown %q", count)
	}
	if !disabled {
		t.Fatal("the sign-in button is enabled during the lock")
	}

	// 5. The admin unlocks bob on the Locks page.
	do("admin unlocks",
		signIn("admin", adminPW),
		chromedp.WaitVisible(chromedp.CSS(`body[data-page="dashboard"]`)),
		chromedp.Navigate(r.ts.URL+"/locks"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready]`)),
		chromedp.WaitVisible(chromedp.CSS(`#locks button.unlock[data-user="bob"]`)),
		chromedp.Click(chromedp.CSS(`#locks button.unlock[data-user="bob"]`)),
		chromedp.WaitVisible(chromedp.ID("no-locks")),
	)

	// The admin changes the concurrent-session policy on the Settings page.
	do("sessions policy",
		chromedp.Navigate(r.ts.URL+"/settings"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready]`)),
		chromedp.WaitVisible(chromedp.ID("sessions-form")),
		chromedp.SetValue(chromedp.ID("sessions-policy"), "allow"),
		chromedp.Click(chromedp.ID("sessions-save")),
		// Rendered by the server only after the reload that follows the save.
		chromedp.WaitReady(chromedp.CSS(`#sessions-policy option[value="allow"][selected]`)),
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	)
	if p, src := r.svc.SessionPolicy(); p != "allow" || src != "device" {
		t.Fatalf("sessions policy after the form: %s from %s", p, src)
	}

	// 6. Bob signs in.
	do("bob signs in", signIn("bob", bobPass), chromedp.WaitVisible(chromedp.CSS(`body[data-page="dashboard"][data-ready]`)))
	if who := text("who", "header .who"); !strings.HasPrefix(strings.TrimSpace(who), "bob") {
		t.Fatalf("signed in as %q", who)
	}

	// 7. Locked out again, bob recovers the account by e-mail.
	do("bob signs out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("login-form")))
	for i := 0; i < 5; i++ {
		if resp, m := attacker.try("bob", "second round "+string(rune('a'+i))); resp.StatusCode != 401 {
			t.Fatalf("second guess %d: %d %v", i, resp.StatusCode, m)
		}
	}
	do("locked again", signIn("bob", bobPass), chromedp.WaitVisible(chromedp.ID("lock-message")))
	do("ask for a code",
		chromedp.Click(chromedp.ID("forgot")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-page="recover"][data-ready]`)),
		chromedp.SetValue(chromedp.ID("recover-username"), "bob"),
		chromedp.Click(chromedp.ID("recover-send")),
		chromedp.WaitVisible(chromedp.CSS(`#recover-start-result.ok`)),
	)
	mb.deliver()
	code := mb.code("bob@example.com")
	const newPass = "lantern quarry meadow 58"
	do("reset with the code",
		chromedp.SetValue(chromedp.ID("recover-code"), code),
		chromedp.SetValue(chromedp.ID("recover-password"), newPass),
		chromedp.SetValue(chromedp.ID("recover-password2"), newPass),
		chromedp.Click(chromedp.ID("recover-reset")),
		chromedp.WaitVisible(chromedp.ID("recovered")),
	)
	do("bob signs in with the new password", signIn("bob", newPass), chromedp.WaitVisible(chromedp.CSS(`body[data-page="dashboard"][data-ready]`)))
	cancelBrowser()
	t.Logf("browser end-to-end test took %v", time.Since(began).Round(time.Millisecond))
}
