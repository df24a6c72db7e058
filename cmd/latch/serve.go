package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/latchnvr/latch/internal/cli"
	"github.com/latchnvr/latch/nvr/app"
	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/notify"
)

// serveFlags registers every serve option. Each can also come from the
// YAML --config file (same name) or the environment (LATCH_ + the name in
// upper case with - and . as _); flags win over the environment, which
// wins over the file.
func serveFlags(fs *flag.FlagSet, cfg *app.Config, configFile *string) {
	fs.StringVar(configFile, "config", "", "read options from a YAML `file` (keys are the flag names)")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "listen `address`")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data `folder` (database and recordings)")
	fs.IntVar(&cfg.Cameras, "cameras", cfg.Cameras, "number of simulated cameras")
	fs.Float64Var(&cfg.FPS, "fps", cfg.FPS, "frames per second per camera")
	fs.IntVar(&cfg.Width, "width", cfg.Width, "frame width")
	fs.IntVar(&cfg.Height, "height", cfg.Height, "frame height")
	fs.DurationVar(&cfg.Segment, "segment", cfg.Segment, "recording segment length (clock time)")
	fs.DurationVar(&cfg.RetainFor, "retain", cfg.RetainFor, "delete recordings older than this")
	fs.Int64Var(&cfg.RetainBytes, "retain-bytes", cfg.RetainBytes, "recordings disk quota in bytes (oldest go first)")
	fs.Float64Var(&cfg.TimeWarp, "time-warp", cfg.TimeWarp, "run the clock this many times faster (60: a real second is a virtual minute)")
	fs.Var((*cli.Strings)(&cfg.TrustedProxies), "trusted-proxy", "an `address or CIDR` allowed to set X-Forwarded-For; repeatable")
	fs.StringVar(&cfg.Preset, "preset", "", "lock policy preset (default: the policy saved on the device, else latch)")
	fs.StringVar(&cfg.PolicyFile, "policy", "", "lock policy YAML `file`")
	fs.Var((*cli.Strings)(&cfg.PolicySets), "set", "override a policy field `K=V`; repeatable")
	fs.Func("argon-time", "argon2id passes (default 2)", uintFlag(&cfg.Argon.Time))
	fs.Func("argon-memory", "argon2id memory in KiB (default 19456)", uintFlag(&cfg.Argon.Memory))
	fs.IntVar(&cfg.HashWorker, "hash-workers", cfg.HashWorker, "password hashes computed at once")
	fs.Func("sessions-policy", "a sign-in while the user is signed in elsewhere: allow, notify (e-mail and log it) or replace-oldest (one session per user); overrides the device's setting (default: the device's, else notify)", func(s string) error {
		p, err := auth.ParseSessionPolicy(s)
		if err != nil {
			return errors.New("want allow, notify or replace-oldest")
		}
		cfg.SessionsPolicy = string(p)
		return nil
	})
	fs.StringVar(&cfg.Notify.SMTP.Host, "smtp-host", "", "SMTP server host for notifications")
	fs.IntVar(&cfg.Notify.SMTP.Port, "smtp-port", 587, "SMTP server port")
	fs.StringVar(&cfg.Notify.SMTP.Username, "smtp-user", "", "SMTP user name")
	fs.StringVar(&cfg.Notify.SMTP.Password, "smtp-password", "", "SMTP password")
	fs.StringVar(&cfg.Notify.SMTP.From, "smtp-from", "", "sender address")
	fs.Func("smtp-security", "starttls (required, default), opportunistic, tls (implicit, port 465) or none", func(s string) error { cfg.Notify.SMTP.Security = notify.Security(s); return nil })
	fs.StringVar(&cfg.Notify.Webhook.URL, "webhook-url", "", "POST notifications to this `URL`")
	fs.StringVar(&cfg.Notify.Webhook.Secret, "webhook-secret", "", "HMAC-SHA256 key that signs webhook bodies")
	fs.BoolVar(&cfg.SecureCookies, "secure-cookies", false, "mark cookies Secure (behind a TLS proxy)")
	fs.BoolVar(&cfg.DebugClock, "debug-clock", false, "soak tests only: expose decision instants and allow stepping the wall clock over HTTP")
}

func uintFlag(p *uint32) func(string) error {
	return func(s string) error {
		var v uint32
		if _, err := fmt.Sscanf(s, "%d", &v); err != nil || v == 0 {
			return fmt.Errorf("want a positive integer")
		}
		*p = v
		return nil
	}
}

func envName(flagName string) string {
	return "LATCH_" + strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(flagName))
}

// applyConfig fills flags not given on the command line from the YAML file
// and then from the environment.
func applyConfig(fs *flag.FlagSet, file string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("--config %s: %w", file, err)
		}
		if len(doc.Content) > 0 {
			root := doc.Content[0]
			if root.Kind != yaml.MappingNode {
				return fmt.Errorf("--config %s: line %d: want a mapping of option names to values", file, root.Line)
			}
			for i := 0; i+1 < len(root.Content); i += 2 {
				k, v := root.Content[i], root.Content[i+1]
				f := fs.Lookup(k.Value)
				if f == nil || k.Value == "config" {
					return fmt.Errorf("--config %s: line %d, column %d: unknown option %q", file, k.Line, k.Column, k.Value)
				}
				if given[k.Value] {
					continue
				}
				values := []string{v.Value}
				if v.Kind == yaml.SequenceNode {
					values = values[:0]
					for _, item := range v.Content {
						values = append(values, item.Value)
					}
				}
				for _, val := range values {
					if err := fs.Set(k.Value, val); err != nil {
						return fmt.Errorf("--config %s: line %d, column %d: %s: %v", file, v.Line, v.Column, k.Value, err)
					}
				}
			}
		}
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	for _, n := range names {
		if given[n] || n == "config" {
			continue
		}
		if v, ok := os.LookupEnv(envName(n)); ok {
			for _, part := range strings.Split(v, ",") {
				if err := fs.Set(n, part); err != nil {
					return fmt.Errorf("$%s: %v", envName(n), err)
				}
			}
		}
	}
	return nil
}

func serve(args []string, stdout, stderr io.Writer) int {
	cfg := app.Defaults()
	cfg.Version = version
	fs := flag.NewFlagSet("latch serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var configFile string
	serveFlags(fs, &cfg, &configFile)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := applyConfig(fs, configFile); err != nil {
		fmt.Fprintf(stderr, "latch serve: %v\n", err)
		return 2
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.Prove = proveSummary
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "latch serve: %v\n", err)
		return 1
	}
	return 0
}
