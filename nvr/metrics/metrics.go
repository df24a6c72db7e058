// Package metrics is the NVR's Prometheus instrumentation: login attempts,
// locks, recording segments and notification delivery, plus the Go runtime
// and process collectors, all on a private registry served by Handler.
//
// Every label value is normalised to a fixed vocabulary (see the label
// constants); anything else is counted under "other", so a caller passing
// user input, a typo or a new outcome can never grow the number of series
// without bound. Camera names, the one open-ended label, are capped at
// MaxCameras distinct values.
//
// Locks and the outbox backlog are gauges read from the database on each
// scrape through callbacks the application provides (SetLockSource,
// SetOutboxBacklog), so they are never stale and need no bookkeeping on the
// login path. The counters are cheap enough for that path: a map lookup and
// an atomic add.
//
// A nil *Metrics is valid and records nothing, so code under test can run
// without metrics.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values. Values outside these sets are recorded as Other.
const (
	Other = "other"

	// Attempt outcomes (the auth service's audit vocabulary).
	OutcomeSuccess      = "success"
	OutcomeWrongSecret  = "wrong_secret"
	OutcomeRepeat       = "repeat"
	OutcomeRefused      = "refused"
	OutcomeTOTPRequired = "totp_required"
	OutcomeError        = "error"

	// Attempt scopes: which key refused ("" is recorded as ScopeNone).
	ScopeNone      = "none"
	ScopePair      = "pair"
	ScopeSource    = "source"
	ScopePrincipal = "principal"
	ScopeHeld      = "held"
	ScopeDisabled  = "disabled"
	ScopeConsole   = "console"

	// Lock key kinds and the modes that count as locks.
	KindPair      = "pair"
	KindSource    = "source"
	KindPrincipal = "principal"
	KindConsole   = "console"
	ModeLocked    = "locked"
	ModeHeld      = "held"
	modeOpen      = "open"

	// Delivery results (the notify package's vocabulary).
	ResultDelivered = "delivered"
	ResultFailed    = "failed"
	ResultAbandoned = "abandoned"
)

var (
	outcomes = set(OutcomeSuccess, OutcomeWrongSecret, OutcomeRepeat, OutcomeRefused, OutcomeTOTPRequired, OutcomeError)
	scopes   = set(ScopeNone, ScopePair, ScopeSource, ScopePrincipal, ScopeHeld, ScopeDisabled, ScopeConsole)
	kinds    = []string{KindPair, KindSource, KindPrincipal, KindConsole}
	kindSet  = set(kinds...)
	modes    = []string{ModeLocked, ModeHeld}
	modeSet  = set(modes...)
	results  = set(ResultDelivered, ResultFailed, ResultAbandoned)
)

// MaxCameras bounds the distinct camera label values; segments of cameras
// beyond it are counted under "other".
const MaxCameras = 64

// cameraName is what a camera label value may look like (camera IDs are
// short identifiers such as "cam1").
var cameraName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)

// CallbackTimeout bounds each callback (lock source, backlog) per scrape.
const CallbackTimeout = 5 * time.Second

// LockKey is one (key kind, mode) pair of the latch_locks gauge.
type LockKey struct {
	Kind string
	Mode string
}

// Metrics owns a private registry and the NVR's metrics. It is safe for
// concurrent use.
type Metrics struct {
	reg        *prometheus.Registry
	attempts   *prometheus.CounterVec
	segments   *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	handler    http.Handler

	mu         sync.Mutex
	cameras    map[string]struct{} // camera label values handed out so far
	lockSource func(context.Context) (map[LockKey]int, error)
	backlog    func(context.Context) (int, error)
}

var (
	locksDesc = prometheus.NewDesc("latch_locks",
		"Lock machines currently not open, by key kind and mode.", []string{"kind", "mode"}, nil)
	backlogDesc = prometheus.NewDesc("latch_outbox_backlog",
		"Notifications waiting for delivery (including ones waiting to be retried).", nil, nil)
)

// New returns metrics registered on a fresh private registry together with
// the Go runtime and process collectors. The global registry is untouched,
// so any number of instances (tests, several servers) can coexist.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_login_attempts_total",
			Help: "Login attempts by outcome and, for refusals, the scope of the key that refused.",
		}, []string{"outcome", "scope"}),
		segments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_recording_segments_total",
			Help: "Recording segments written, by camera.",
		}, []string{"camera"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_outbox_deliveries_total",
			Help: "Notification delivery attempts by result (delivered, failed and to be retried, abandoned).",
		}, []string{"result"}),
		cameras: map[string]struct{}{},
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.attempts, m.segments, m.deliveries,
		sourceCollector{m},
	)
	// Series that exist from the start read 0 rather than missing, so
	// rate() and alerts work before the first event.
	for o := range outcomes {
		if o == OutcomeRefused {
			continue
		}
		m.attempts.WithLabelValues(o, ScopeNone)
	}
	for s := range scopes {
		if s != ScopeNone {
			m.attempts.WithLabelValues(OutcomeRefused, s)
		}
	}
	for r := range results {
		m.deliveries.WithLabelValues(r)
	}
	m.handler = promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: slogLogger{},
		// A failing callback costs its own series, not the whole scrape;
		// promhttp_metric_handler_errors_total counts it.
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            m.reg,
		MaxRequestsInFlight: 4,
		Timeout:             2 * CallbackTimeout,
	}))
	return m
}

// Registry is the private registry, for tests and for registering further
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text (or negotiated)
// exposition format; mount it at /metrics.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return m.handler
}

// Attempt counts one login attempt. outcome is the audit outcome
// ("success", "wrong_secret", "repeat", "refused", "totp_required",
// "error"); scope is the refusing key's scope ("pair", "source",
// "principal", "held", "disabled", "console"), "" or "none" when nothing
// refused. Other values are counted as "other".
func (m *Metrics) Attempt(outcome, scope string) {
	if m == nil {
		return
	}
	if scope == "" {
		scope = ScopeNone
	}
	m.attempts.WithLabelValues(norm(outcome, outcomes), norm(scope, scopes)).Inc()
}

// SegmentWritten counts one recording segment of camera. Its signature
// matches a recorder's segment-written hook.
func (m *Metrics) SegmentWritten(camera string) {
	if m == nil {
		return
	}
	m.segments.WithLabelValues(m.cameraLabel(camera)).Inc()
}

// Delivery counts one notification delivery attempt by result
// ("delivered", "failed", "abandoned"). Its signature matches the
// notifier's observer hook.
func (m *Metrics) Delivery(result string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(norm(result, results)).Inc()
}

// SetLockSource sets the callback that counts lock machines by (kind,
// mode) at scrape time. Known kinds are pair, source, principal and
// console; known modes locked and held. Open keys are not locks and are
// ignored; unknown kinds or modes are summed under "other". nil removes
// the gauge.
func (m *Metrics) SetLockSource(f func(ctx context.Context) (map[LockKey]int, error)) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lockSource = f
}

// SetOutboxBacklog sets the callback that counts undelivered notifications
// at scrape time. nil removes the gauge.
func (m *Metrics) SetOutboxBacklog(f func(ctx context.Context) (int, error)) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.backlog = f
}

// cameraLabel returns camera itself while it is a plausible camera ID and
// the label budget is not spent, otherwise "other".
func (m *Metrics) cameraLabel(camera string) string {
	if !cameraName.MatchString(camera) {
		return Other
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cameras[camera]; ok {
		return camera
	}
	if len(m.cameras) >= MaxCameras {
		return Other
	}
	m.cameras[camera] = struct{}{}
	return camera
}

func (m *Metrics) sources() (func(context.Context) (map[LockKey]int, error), func(context.Context) (int, error)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lockSource, m.backlog
}

// sourceCollector turns the callbacks into gauges at scrape time.
type sourceCollector struct{ m *Metrics }

func (c sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- locksDesc
	ch <- backlogDesc
}

func (c sourceCollector) Collect(ch chan<- prometheus.Metric) {
	locks, backlog := c.m.sources()
	if locks != nil {
		collectLocks(ch, locks)
	}
	if backlog != nil {
		ctx, cancel := context.WithTimeout(context.Background(), CallbackTimeout)
		defer cancel()
		n, err := backlog(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(backlogDesc, fmt.Errorf("outbox backlog: %w", err))
		} else {
			ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(max(n, 0)))
		}
	}
}

func collectLocks(ch chan<- prometheus.Metric, source func(context.Context) (map[LockKey]int, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), CallbackTimeout)
	defer cancel()
	raw, err := source(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(locksDesc, fmt.Errorf("lock source: %w", err))
		return
	}
	counts := make(map[LockKey]int, len(kinds)*len(modes))
	for _, k := range kinds {
		for _, md := range modes {
			counts[LockKey{k, md}] = 0
		}
	}
	for key, n := range raw {
		if key.Mode == modeOpen || n <= 0 {
			continue
		}
		counts[LockKey{norm(key.Kind, kindSet), norm(key.Mode, modeSet)}] += n
	}
	for key, n := range counts {
		ch <- prometheus.MustNewConstMetric(locksDesc, prometheus.GaugeValue, float64(n), key.Kind, key.Mode)
	}
}

func set(vs ...string) map[string]struct{} {
	m := make(map[string]struct{}, len(vs))
	for _, v := range vs {
		m[v] = struct{}{}
	}
	return m
}

// norm returns v if it is in allowed, else Other.
func norm(v string, allowed map[string]struct{}) string {
	if _, ok := allowed[v]; ok {
		return v
	}
	return Other
}

// slogLogger routes promhttp's errors (a failing callback, a client gone
// mid-response) to the default slog logger.
type slogLogger struct{}

func (slogLogger) Println(v ...any) {
	slog.Default().Warn("metrics: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
