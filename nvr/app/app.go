// Package app wires the NVR together: the store, the auth service, the
// cameras and recorders, the web server, the notifier and the metrics, the
// maintenance loop and graceful shutdown. It owns lifetimes and wiring,
// never behaviour; cmd/latch parses flags into a Config and calls Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/model/policyfile"
	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/camera"
	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/metrics"
	"github.com/latchnvr/latch/nvr/notify"
	"github.com/latchnvr/latch/nvr/recorder"
	"github.com/latchnvr/latch/nvr/store"
	"github.com/latchnvr/latch/nvr/web"
)

// Config is everything `latch serve` can be told.
type Config struct {
	Listen   string
	DataDir  string
	Cameras  int
	FPS      float64
	Width    int
	Height   int
	Segment  time.Duration
	TimeWarp float64
	// Retention: segments older than RetainFor, or beyond RetainBytes in
	// total, go first-recorded-first.
	RetainFor   time.Duration
	RetainBytes int64
	// TrustedProxies may set X-Forwarded-For (CIDRs or addresses).
	TrustedProxies []string
	// Policy: a preset or a file, plus --set overrides; "" and nil mean the
	// policy stored on the device, or latch when none is stored.
	Preset     string
	PolicyFile string
	PolicySets []string
	Argon      auth.HashParams
	HashWorker int
	// SessionsPolicy overrides the device's concurrent-session setting
	// (allow, notify, replace-oldest) at start-up; "" keeps the device's.
	SessionsPolicy string
	Notify         notify.Config
	// Prove runs the explorer for the policy editor (cmd wires proofs in;
	// nvr never imports it).
	Prove         func(model.Policy) (string, bool)
	SecureCookies bool
	Version       string
	Log           *slog.Logger
	// Clock overrides the clock (tests, the simulator); nil means real,
	// warped by TimeWarp when it is not 1.
	Clock clock.Clock
	// Ready, if set, receives the listening address once serving.
	Ready func(addr string)
	// DebugClock (soak tests only) exposes decision instants on login
	// answers and lets POST /debug/clock/step?by=DURATION step the wall
	// clock while running.
	DebugClock bool
}

// Defaults returns the configuration `latch serve` starts from.
func Defaults() Config {
	return Config{
		Listen: "127.0.0.1:8080", DataDir: "./latch-data", Cameras: 4, FPS: 1, Width: 640, Height: 360,
		Segment: time.Minute, TimeWarp: 1, RetainFor: 30 * 24 * time.Hour, RetainBytes: 2 << 30,
		Argon: auth.OWASPParams, HashWorker: 2,
	}
}

// DBPath is where the database lives in a data folder.
func DBPath(dataDir string) string { return filepath.Join(dataDir, "latch.db") }

// Run serves until ctx is cancelled, then shuts down gracefully.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data folder %s: %w", cfg.DataDir, err)
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.Real{}
		if cfg.TimeWarp != 1 && cfg.TimeWarp != 0 {
			w, err := clock.NewWarped(clock.Real{}, cfg.TimeWarp)
			if err != nil {
				return fmt.Errorf("--time-warp: %w", err)
			}
			clk = w
		}
		if cfg.DebugClock {
			clk = clock.NewOffset(clk)
		}
	}
	if cfg.Notify.SMTP.Host != "" || cfg.Notify.Webhook.URL != "" {
		if err := cfg.Notify.Validate(); err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
	}
	db, err := store.Open(DBPath(cfg.DataDir), store.Options{FirmwareVersion: cfg.Version})
	if err != nil {
		return err
	}
	defer db.Close()

	policy, source, err := choosePolicy(ctx, db, cfg)
	if err != nil {
		return err
	}
	svc, err := auth.New(db, auth.Config{Clock: clk, Hasher: auth.NewHasher(cfg.Argon, cfg.HashWorker), Policy: policy,
		SessionPolicy: auth.SessionPolicy(cfg.SessionsPolicy), Log: log})
	if err != nil {
		return err
	}
	defer svc.Close()
	if policy.Disabled {
		log.Warn("lockout protection is DISABLED by the policy (enabled: false)")
	}

	met := metrics.New()
	cfg.Notify.Observe = met.Delivery
	// Cameras and recorders: independent of auth (INV-RECORDING).
	cams := camera.DefaultConfigs(cfg.Cameras)
	for i := range cams {
		cams[i].Interval = time.Duration(float64(time.Second) / cfg.FPS)
		cams[i].Width, cams[i].Height = cfg.Width, cfg.Height
	}
	idx, err := newSegmentIndex(ctx, db, cams)
	if err != nil {
		return fmt.Errorf("cameras: %w", err)
	}
	idx.written = met.SegmentWritten
	fleet, err := recorder.StartFleet(clk, idx, cams, recorder.Config{DataDir: cfg.DataDir, Segment: cfg.Segment,
		OnError: func(err error) { log.Error("recording", "err", err) }})
	if err != nil {
		return err
	}
	defer fleet.Stop()

	proxies, err := parseProxies(cfg.TrustedProxies)
	if err != nil {
		return err
	}
	met.SetLockSource(func(ctx context.Context) (map[metrics.LockKey]int, error) {
		keys, err := db.ListNotOpen(ctx)
		if err != nil {
			return nil, err
		}
		m := map[metrics.LockKey]int{}
		for _, k := range keys {
			m[metrics.LockKey{Kind: string(k.Kind), Mode: string(k.Mode)}]++
		}
		return m, nil
	})
	srv, err := web.New(web.Config{
		Auth: svc, DB: db, Cameras: fleet.Cameras, DataDir: cfg.DataDir, TrustedProxies: proxies,
		Prove: cfg.Prove, Version: cfg.Version, Log: log, Metrics: met, SecureCookies: cfg.SecureCookies,
		ExposeClock: cfg.DebugClock,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", met.Handler())
	if off, ok := clk.(*clock.Offset); ok {
		mux.HandleFunc("POST /debug/clock/step", func(w http.ResponseWriter, r *http.Request) {
			by, err := time.ParseDuration(r.URL.Query().Get("by"))
			if err != nil {
				http.Error(w, "by: want a Go duration", http.StatusBadRequest)
				return
			}
			off.Step(by)
			log.Warn("debug: wall clock stepped", "by", by)
		})
	}
	mux.Handle("/", srv.Handler())
	hs := web.HTTPServer(cfg.Listen, mux)
	// Open live streams end at shutdown instead of holding it up.
	hs.RegisterOnShutdown(srv.Close)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	activated, _ := svc.Activated(ctx)
	sessions, sessionsFrom := svc.SessionPolicy()
	log.Info("latch serving", "url", "http://"+ln.Addr().String()+"/", "data", cfg.DataDir, "activated", activated,
		"cameras", cfg.Cameras, "policy", source, "sessions_policy", string(sessions)+" ("+sessionsFrom+")", "time_warp", cfg.TimeWarp)
	if !activated {
		log.Info("device not activated: open the URL to set the admin password and master PIN")
	}
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}

	notifier := notify.New(db, clk, cfg.Notify, log)
	met.SetOutboxBacklog(notifier.Backlog)
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	notifierDone := make(chan struct{})
	go func() { defer close(notifierDone); _ = notifier.Run(bg) }()
	// The database closes only after the notifier recorded its last delivery.
	defer func() { stopBG(); <-notifierDone }()
	stopWatch := clock.Watch(clk, 10*time.Second, 2*time.Second, func(st clock.Step) {
		n, err := svc.Reanchor(bg, false)
		log.Warn("wall clock stepped; locks re-anchored (R-RESTART)", "delta", st.Delta, "keys", n, "err", err)
	})
	defer stopWatch()
	go maintain(bg, clk, svc, db, idx, cfg, log)

	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	stopBG()
	fleet.Stop()
	if n, err := svc.Reanchor(sctx, true); err != nil {
		log.Error("re-anchor on shutdown", "err", err)
	} else {
		log.Info("locks re-anchored for restart", "keys", n)
	}
	return nil
}

// choosePolicy: flags win; otherwise the policy saved on the device;
// otherwise latch.
func choosePolicy(ctx context.Context, db *store.DB, cfg Config) (model.Policy, string, error) {
	if cfg.Preset != "" || cfg.PolicyFile != "" || len(cfg.PolicySets) > 0 {
		p, err := policyfile.Build(cfg.Preset, cfg.PolicyFile, cfg.PolicySets)
		if err != nil {
			return p, "", fmt.Errorf("policy: %w", err)
		}
		return p, "flags", nil
	}
	stored, err := db.GetPolicy(ctx)
	if err == nil && stored.YAML != "" {
		p, err := policyfile.Unmarshal([]byte(stored.YAML))
		if err != nil {
			return p, "", fmt.Errorf("the policy stored on the device is invalid (fix it with `latch policy set`): %w", err)
		}
		return p, "stored", nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return model.Policy{}, "", err
	}
	return model.Default(), "latch preset", nil
}

func parseProxies(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: want an address or CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// maintain runs once a minute of clock time: seal audit aggregates, prune
// sessions, apply retention, collect garbage.
func maintain(ctx context.Context, clk clock.Clock, svc *auth.Service, db *store.DB, idx *segmentIndex, cfg Config, log *slog.Logger) {
	tick := make(chan struct{}, 1)
	var arm func()
	arm = func() {
		clk.AfterFunc(time.Minute, func() {
			select {
			case tick <- struct{}{}:
			default:
			}
			if ctx.Err() == nil {
				arm()
			}
		})
	}
	arm()
	var policyAt int64
	if sp, err := db.GetPolicy(ctx); err == nil {
		policyAt = sp.UpdatedNS
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		// A policy saved by the console (`latch policy set`) applies here.
		if sp, err := db.GetPolicy(ctx); err == nil && sp.UpdatedNS != policyAt {
			policyAt = sp.UpdatedNS
			if p, err := policyfile.Unmarshal([]byte(sp.YAML)); err == nil && svc.UsePolicy(p) == nil {
				log.Info("policy reloaded from the device database", "preset", p.Preset)
			}
		}
		if err := svc.Maintain(ctx); err != nil && ctx.Err() == nil {
			log.Error("maintenance", "err", err)
		}
		if _, err := recorder.Prune(ctx, idx, cfg.DataDir, clk.Now(), recorder.Retention{MaxAge: cfg.RetainFor, MaxBytes: cfg.RetainBytes}); err != nil && ctx.Err() == nil {
			log.Error("retention", "err", err)
		}
		if _, err := db.CollectGarbage(ctx, func(p string) error { return recorder.RemoveSegmentFile(cfg.DataDir, p) }); err != nil && ctx.Err() == nil {
			log.Error("garbage collection", "err", err)
		}
	}
}
