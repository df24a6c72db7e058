package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/latchnvr/latch/internal/cli"
	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/policyfile"
	"github.com/latchnvr/latch/nvr/app"
	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
)

// console runs the commands of the appliance's local console.
type console struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	secretReader   *bufio.Reader
}

func (c *console) fail(cmd string, err error) int {
	fmt.Fprintf(c.stderr, "latch %s: %v\n", cmd, err)
	return 1
}

// open opens the device's database and an auth service on it, on the
// console channel; closing the database closes the service first. It never creates a data folder: a console command on a
// folder with no device says what to do.
func (c *console) open(data string) (*store.DB, *auth.Service, error) {
	path := app.DBPath(data)
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("no device database at %s: run `latch serve --data %s` first, or pass --data", path, data)
	}
	db, err := store.Open(path, store.Options{QuickCheck: true})
	if err != nil {
		return nil, nil, err
	}
	p := model.Default()
	if sp, err := db.GetPolicy(context.Background()); err == nil && sp.YAML != "" {
		if pp, err := policyfile.Unmarshal([]byte(sp.YAML)); err == nil {
			p = pp
		}
	}
	svc, err := auth.New(db, auth.Config{Clock: clock.Real{}, Policy: p, Hasher: auth.NewHasher(auth.OWASPParams, 1)})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, svc, nil
}

// readSecret reads one line from the terminal without echo, or from stdin
// when it is not a terminal (scripts, tests).
func (c *console) readSecret(prompt string) (string, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		return string(b), err
	}
	if c.secretReader == nil {
		c.secretReader = bufio.NewReader(c.stdin)
	}
	line, err := c.secretReader.ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", fmt.Errorf("reading %s: %w", strings.TrimSuffix(strings.ToLower(prompt), ": "), err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// authenticate proves the person at the box is an admin: the master PIN or
// an admin's password, decided on the console channel (R-CONSOLE: only the
// console key and Disabled apply, so remote locks never keep the owner out).
func (c *console) authenticate(ctx context.Context, svc *auth.Service, as string) (auth.Actor, error) {
	if ok, err := svc.Activated(ctx); err != nil {
		return "", err
	} else if !ok {
		return "", errors.New("device not activated: run `latch serve` and open its address in a browser to set the admin password and master PIN")
	}
	if as == "" {
		users, err := svc.DB().ListUsers(ctx)
		if err != nil {
			return "", err
		}
		for _, u := range users {
			if u.Role == store.RoleAdmin && !u.Disabled {
				as = u.Name
				break
			}
		}
		if as == "" {
			return "", errors.New("no enabled admin: use --as USER")
		}
	}
	secret, err := c.readSecret("Master PIN or " + as + "'s password: ")
	if err != nil {
		return "", err
	}
	res, err := svc.Login(ctx, auth.Attempt{Username: as, Secret: secret, Channel: model.Console, NoSession: true})
	if err != nil {
		return "", err
	}
	switch {
	case res.Decision.Verdict == model.Allowed:
		if res.User.Role != store.RoleAdmin {
			return "", fmt.Errorf("%s is not an admin", as)
		}
		return auth.Actor("console:" + string(res.Principal)), nil
	case res.Decision.Verdict == model.Refused:
		return "", fmt.Errorf("console locked for %s: try again in %s (R-CONSOLE)", as, model.FormatDuration(res.Decision.RetryAfter.Round(time.Second)))
	}
	return "", fmt.Errorf("wrong master PIN or password (%d tries left before a short console lock)", res.Decision.Remaining)
}

func dataFlag(fs *flag.FlagSet) *string {
	def := app.Defaults().DataDir
	if v, ok := os.LookupEnv("LATCH_DATA"); ok {
		def = v
	}
	return fs.String("data", def, "data `folder` of the device")
}

func (c *console) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("latch "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

// parseAnywhere parses flags before, between and after the positional
// arguments (`latch user add bob --role operator`): the flag package stops
// at the first positional one, and a flag silently taken for a name would
// act on the wrong data folder or role. "--" ends flags as usual.
func parseAnywhere(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

func (c *console) status(args []string) int {
	fs := c.flags("status")
	data := dataFlag(fs)
	if fs.Parse(args) != nil {
		return 2
	}
	db, svc, err := c.open(*data)
	if err != nil {
		return c.fail("status", err)
	}
	defer closeDevice(db, svc)
	ctx := context.Background()
	dev, err := db.GetDevice(ctx)
	if err != nil {
		return c.fail("status", err)
	}
	w := tabwriter.NewWriter(c.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(w, "device\t%s\n", map[bool]string{true: "activated", false: "NOT ACTIVATED (run latch serve and open it in a browser)"}[dev.Activated])
	fmt.Fprintf(w, "firmware\t%s (schema %d)\n", dev.FirmwareVersion, dev.SchemaVersion)
	fmt.Fprintf(w, "clock\t%s\n", time.Now().UTC().Format(time.RFC3339))
	p := svc.Policy()
	fmt.Fprintf(w, "policy\t%s%s\n", orDefault(p.Preset, "custom"), map[bool]string{true: "  WARNING: protection disabled", false: ""}[p.Disabled])
	cams, _ := db.ListCameras(ctx)
	usage, _ := db.SegmentUsage(ctx)
	fmt.Fprintf(w, "cameras\t%d, %d segments, %.1f MiB recorded\n", len(cams), usage.Segments, float64(usage.Bytes)/(1<<20))
	w.Flush()
	locks, err := svc.ListLocks(ctx)
	if err != nil {
		return c.fail("status", err)
	}
	if len(locks) == 0 {
		fmt.Fprintln(c.stdout, "locks\tnone")
		return 0
	}
	fmt.Fprintln(c.stdout, "\nlocks:")
	w = tabwriter.NewWriter(c.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tUSER\tSOURCE\tMODE\tLEVEL\tREMAINING\tWHY")
	for _, l := range locks {
		rem := "until unlocked"
		if l.Until != nil {
			rem = model.FormatDuration(l.Remaining.Round(time.Second))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", l.Kind, l.Principal, l.Source, l.Mode, l.Level, rem, l.Why)
	}
	w.Flush()
	return 0
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (c *console) user(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(c.stderr, "latch user: want list, add, passwd, email, disable or enable")
		return 2
	}
	sub := args[0]
	fs := c.flags("user " + sub)
	data := dataFlag(fs)
	as := fs.String("as", "", "admin to authenticate as (default: the first admin)")
	role := fs.String("role", "viewer", "role for add: admin, operator or viewer")
	email := fs.String("email", "", "e-mail `address` for add and email (where notices and recovery codes go)")
	names, err := parseAnywhere(fs, args[1:])
	if err != nil {
		return 2
	}
	db, svc, err := c.open(*data)
	if err != nil {
		return c.fail("user", err)
	}
	defer closeDevice(db, svc)
	ctx := context.Background()
	if sub == "list" {
		users, err := db.ListUsers(ctx)
		if err != nil {
			return c.fail("user list", err)
		}
		w := tabwriter.NewWriter(c.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tROLE\tSTATE\tEMAIL\t2FA")
		for _, u := range users {
			state := "enabled"
			if u.Disabled {
				state = "disabled"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\n", u.Name, u.Role, state, u.Email, len(u.TOTPSecret) > 0)
		}
		w.Flush()
		return 0
	}
	if len(names) != 1 {
		fmt.Fprintf(c.stderr, "latch user %s: want exactly one USER\n", sub)
		return 2
	}
	name := names[0]
	actor, err := c.authenticate(ctx, svc, *as)
	if err != nil {
		return c.fail("user "+sub, err)
	}
	switch sub {
	case "add":
		pw, err := c.readSecret("New user's password: ")
		if err != nil {
			return c.fail("user add", err)
		}
		u, err := svc.CreateUser(ctx, actor, auth.NewUser{Name: name, Password: pw, Role: store.Role(*role), Email: *email})
		if err != nil {
			return c.fail("user add", err)
		}
		fmt.Fprintf(c.stdout, "added %s (%s)\n", u.Name, u.Role)
	case "passwd":
		pw, err := c.readSecret("New password: ")
		if err != nil {
			return c.fail("user passwd", err)
		}
		if err := svc.SetPassword(ctx, actor, name, pw, true); err != nil {
			return c.fail("user passwd", err)
		}
		fmt.Fprintf(c.stdout, "password of %s reset: every key of the account opened, sessions revoked, change required at next login (R-RESET)\n", name)
	case "email":
		given := false
		fs.Visit(func(f *flag.Flag) { given = given || f.Name == "email" })
		if !given {
			fmt.Fprintln(c.stderr, `latch user email: want --email ADDRESS (--email "" removes it)`)
			return 2
		}
		if _, err := svc.UpdateUser(ctx, actor, name, func(u *store.User) error { u.Email = *email; return nil }); err != nil {
			return c.fail("user email", err)
		}
		fmt.Fprintf(c.stdout, "e-mail of %s set to %q: notices and recovery codes go there\n", name, *email)
	case "disable", "enable":
		_, err := svc.UpdateUser(ctx, actor, name, func(u *store.User) error { u.Disabled = sub == "disable"; return nil })
		if err != nil {
			return c.fail("user "+sub, err)
		}
		fmt.Fprintf(c.stdout, "%sd %s\n", sub, name)
	default:
		fmt.Fprintf(c.stderr, "latch user: unknown subcommand %q\n", sub)
		return 2
	}
	return 0
}

func (c *console) unlock(args []string) int {
	fs := c.flags("unlock")
	data := dataFlag(fs)
	as := fs.String("as", "", "admin to authenticate as (default: the first admin)")
	src := fs.String("source", "", "unlock only this `address`'s pair and source keys")
	all := fs.Bool("all", false, "unlock every key")
	names, err := parseAnywhere(fs, args)
	if err != nil {
		return 2
	}
	var user string
	if len(names) == 1 {
		user = names[0]
	}
	if len(names) > 1 || (user == "") == !*all {
		fmt.Fprintln(c.stderr, "latch unlock: want USER [--source ADDR] or --all")
		return 2
	}
	sc := auth.UnlockScope{User: user, All: *all}
	if *src != "" {
		s, err := model.ParseSource(*src)
		if err != nil {
			return c.fail("unlock", err)
		}
		sc.Source = s
	}
	db, svc, err := c.open(*data)
	if err != nil {
		return c.fail("unlock", err)
	}
	defer closeDevice(db, svc)
	ctx := context.Background()
	actor, err := c.authenticate(ctx, svc, *as)
	if err != nil {
		return c.fail("unlock", err)
	}
	n, err := svc.Unlock(ctx, actor, sc)
	if err != nil {
		return c.fail("unlock", err)
	}
	fmt.Fprintf(c.stdout, "unlocked: %d locked key(s) opened (R-UNLOCK)\n", n)
	return 0
}

func (c *console) log(args []string) int {
	fs := c.flags("log")
	data := dataFlag(fs)
	follow := fs.Bool("follow", false, "keep printing new records")
	user := fs.String("user", "", "only this user")
	source := fs.String("source", "", "only this source")
	outcome := fs.String("outcome", "", "only this outcome (success, wrong_secret, refused, lock, unlock, ...)")
	format := fs.String("format", "text", "text, json or csv")
	limit := fs.Int("n", 50, "records to show")
	if fs.Parse(args) != nil {
		return 2
	}
	if *format != "text" && *format != "json" && *format != "csv" {
		fmt.Fprintln(c.stderr, "latch log: --format must be text, json or csv")
		return 2
	}
	db, svc, err := c.open(*data)
	if err != nil {
		return c.fail("log", err)
	}
	defer closeDevice(db, svc)
	f := store.AuditFilter{Outcome: *outcome, Limit: *limit}
	if *user != "" {
		pr, err := model.CanonicalPrincipal(*user)
		if err != nil {
			return c.fail("log", err)
		}
		f.Principal = string(pr)
	}
	if *source != "" {
		s, err := model.ParseSource(*source)
		if err != nil {
			return c.fail("log", err)
		}
		f.Source = s.String()
	}
	ctx := context.Background()
	cw := csv.NewWriter(c.stdout)
	enc := json.NewEncoder(c.stdout)
	if *format == "csv" {
		cw.Write([]string{"id", "time", "user", "source", "channel", "actor", "outcome", "reason", "count"})
	}
	var last int64
	for {
		recs, err := db.ListAudit(ctx, f)
		if err != nil {
			return c.fail("log", err)
		}
		for i := len(recs) - 1; i >= 0; i-- {
			r := recs[i]
			if r.ID <= last {
				continue
			}
			last = r.ID
			t := time.Unix(0, r.WallNS).UTC().Format(time.RFC3339)
			switch *format {
			case "json":
				enc.Encode(map[string]any{"id": r.ID, "time": t, "user": r.Principal, "source": r.Source, "channel": r.Channel, "actor": r.Actor,
					"outcome": r.Outcome, "reason": r.Reason, "count": r.Count, "detail": r.Detail})
			case "csv":
				cw.Write([]string{fmt.Sprint(r.ID), t, r.Principal, r.Source, string(r.Channel), r.Actor, r.Outcome, r.Reason, fmt.Sprint(r.Count)})
				cw.Flush()
			default:
				count := ""
				if r.Count > 1 {
					count = fmt.Sprintf(" ×%d", r.Count)
				}
				fmt.Fprintf(c.stdout, "%s %-8s %-12s %-18s %-14s %s%s\n", t, r.Channel, r.Principal, r.Source, r.Outcome, r.Reason, count)
			}
		}
		if !*follow {
			return 0
		}
		time.Sleep(time.Second)
	}
}

func (c *console) factoryReset(args []string) int {
	fs := c.flags("factory-reset")
	data := dataFlag(fs)
	as := fs.String("as", "", "admin to authenticate as (default: the first admin)")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	if fs.Parse(args) != nil {
		return 2
	}
	db, svc, err := c.open(*data)
	if err != nil {
		return c.fail("factory-reset", err)
	}
	defer closeDevice(db, svc)
	ctx := context.Background()
	if !*yes {
		ans, err := c.readSecret("Erase every user, lock and setting (recordings are kept)? Type RESET: ")
		if err != nil || ans != "RESET" {
			return c.fail("factory-reset", errors.New("not confirmed; nothing changed"))
		}
	}
	actor, err := c.authenticate(ctx, svc, *as)
	if err != nil {
		return c.fail("factory-reset", err)
	}
	if err := svc.FactoryReset(ctx, actor); err != nil {
		return c.fail("factory-reset", err)
	}
	fmt.Fprintln(c.stdout, "factory reset done: users, keys, sessions and settings erased; recordings kept. Open latch serve's address to activate again.")
	return 0
}

func (c *console) policy(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(c.stderr, "latch policy: want show, validate, prove or set")
		return 2
	}
	sub := args[0]
	if sub == "prove" {
		return proveCmd("latch policy", args[1:], c.stdout, c.stderr)
	}
	fs := c.flags("policy " + sub)
	data := dataFlag(fs)
	as := fs.String("as", "", "admin to authenticate as (set)")
	var pf cli.PolicyFlags
	pf.Register(fs)
	if fs.Parse(args[1:]) != nil {
		return 2
	}
	var p model.Policy
	var err error
	explicit := pf.Preset != "" || pf.File != "" || len(pf.Sets) > 0
	if explicit || sub == "validate" {
		if p, err = pf.Build(); err != nil {
			fmt.Fprintf(c.stderr, "latch policy %s: %v\n", sub, err)
			return 2
		}
	}
	switch sub {
	case "validate":
		fmt.Fprintln(c.stdout, "policy is valid")
		if p.Disabled {
			fmt.Fprintln(c.stdout, "WARNING: protection is disabled (enabled: false): no key ever locks")
		}
		return 0
	case "show":
		if !explicit {
			db, svc, err := c.open(*data)
			if err != nil {
				return c.fail("policy show", err)
			}
			p = svc.Policy()
			closeDevice(db, svc)
		}
		c.stdout.Write(policyfile.Marshal(p))
		return 0
	case "set":
		if !explicit {
			fmt.Fprintln(c.stderr, "latch policy set: give --preset, --policy FILE and/or --set K=V")
			return 2
		}
		summary, holds := proveSummary(p)
		if !holds {
			fmt.Fprintln(c.stdout, summary)
			return c.fail("policy set", errors.New("the policy breaks a universal invariant; not saved"))
		}
		db, svc, err := c.open(*data)
		if err != nil {
			return c.fail("policy set", err)
		}
		defer closeDevice(db, svc)
		ctx := context.Background()
		actor, err := c.authenticate(ctx, svc, *as)
		if err != nil {
			return c.fail("policy set", err)
		}
		if err := svc.SetPolicy(ctx, actor, p); err != nil {
			return c.fail("policy set", err)
		}
		fmt.Fprintln(c.stdout, "policy saved; a running latch serve applies it within a minute")
		return 0
	}
	fmt.Fprintf(c.stderr, "latch policy: unknown subcommand %q\n", sub)
	return 2
}

// closeDevice closes the service's own connections, then the database.
func closeDevice(db *store.DB, svc *auth.Service) {
	svc.Close()
	db.Close()
}
