// Package notify delivers the notification outbox: lock, hold, new-device,
// password-reset and recovery-code notices that the auth service queued in
// the same transaction as their event (store.Tx.EnqueueOutbox). Delivery is
// by e-mail (SMTP, STARTTLS by default) and/or a signed webhook.
//
// Logins never wait for the notifier: they only insert a row. The notifier
// runs beside them (Run), reads due rows, delivers, and records the result
// (store.Tx.MarkOutboxDelivered, MarkOutboxFailed). A slow or dead mail
// server costs the notifier time, never a login.
//
// # Delivery semantics
//
// At least once. A message is marked delivered after every configured
// channel accepted it; a crash between acceptance and the mark sends it
// again, with the same Message-ID (mail clients merge the two) and the same
// X-Latch-Delivery id (receivers can deduplicate). When one channel accepted
// and another failed, the retry skips the one that accepted, as long as the
// process lives. One notifier per database.
//
// # Retries
//
// A failed attempt is retried after MinBackoff·2^(n-1), capped at
// MaxBackoff, with equal jitter (the delay lies in [d/2, d]) drawn from
// Config.Rand, and no sooner than a webhook's Retry-After. After
// MaxAttempts the message is abandoned: next attempt cleared, last error
// kept for the operator, an error logged. A failure retrying cannot fix (an
// invalid address, a 5xx answer to RCPT or to the message) abandons at
// once. When a server fails outright (cannot connect, TLS, AUTH, a 5xx from
// the webhook), the other messages of the same pass are not sent to it but
// charged the same failure, so a dead server costs one timeout per pass,
// not one per message.
//
// # Time
//
// Outbox times are wall-clock nanoseconds (they are written by the auth
// service and survive restarts), and the wall clock can step. Within a
// process the notifier's schedule never goes backwards: its "now" is the
// later of the wall clock and the last value it used advanced by the
// monotonic clock, so a step back delays nothing. Across a restart onto a
// clock that was set back (an RTC reset), messages scheduled further ahead
// than any back-off could have put them are taken as proof of the step and
// delivered at once instead of years later. Timestamps meant for people and
// receivers (delivered_ns, the webhook's signed timestamp) are the wall
// clock as it is.
package notify

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/latchnvr/latch/nvr/clock"
	"github.com/latchnvr/latch/nvr/store"
)

// channel is a delivery channel, as a bit so a set of them fits in a byte.
type channel uint8

const (
	chSMTP channel = 1 << iota
	chWebhook
)

func (c channel) String() string {
	if c == chSMTP {
		return "smtp"
	}
	return "webhook"
}

// maxErrorLen bounds the last_error stored per message.
const maxErrorLen = 1000

// markTimeout bounds recording a result, which runs even while shutting
// down so that a delivery that happened is not sent again.
const markTimeout = 5 * time.Second

// backlogCap bounds the rows Backlog reads.
const backlogCap = 10000

// Notifier drains the outbox. It is safe for concurrent use; deliveries are
// serialised.
type Notifier struct {
	db     *store.DB
	clk    clock.Clock
	cfg    Config
	log    *slog.Logger
	cfgErr error
	mail   *mailer  // nil: no e-mail
	hook   *webhook // nil: no webhook
	wake   chan struct{}

	mu  sync.Mutex // held for a whole pass; guards the fields below
	rnd *mrand.Rand
	// hw is the last "now" the schedule used and the instant it was read.
	hw struct {
		ok         bool
		wall, inst int64
	}
	sent map[int64]channel // channels that accepted a message still pending

	// afterPass, if set (tests), is called by Run after each pass with the
	// wait it armed its timer for.
	afterPass func(wait time.Duration)
}

// New returns a notifier for db. An invalid cfg is logged here and
// returned by Run and DeliverDue; call cfg.Validate first to refuse to
// start. A nil log means slog.Default().
func New(db *store.DB, clk clock.Clock, cfg Config, log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.Default()
	}
	n := &Notifier{db: db, clk: clk, cfg: cfg.withDefaults(), log: log.With("component", "notify"),
		wake: make(chan struct{}, 1), sent: map[int64]channel{}, rnd: cfg.Rand}
	if n.rnd == nil {
		var seed [32]byte
		_, _ = rand.Read(seed[:]) // never fails (crypto/rand panics instead)
		n.rnd = mrand.New(mrand.NewChaCha8(seed))
	}
	n.cfgErr = cfg.Validate()
	if n.cfgErr == nil && cfg.SMTP.Enabled() {
		n.mail, n.cfgErr = newMailer(cfg.SMTP)
	}
	if n.cfgErr == nil && cfg.Webhook.Enabled() {
		n.hook, n.cfgErr = newWebhook(cfg.Webhook)
	}
	if n.cfgErr != nil {
		n.mail, n.hook = nil, nil
		n.log.Error("notifications are misconfigured; nothing will be delivered", "err", n.cfgErr)
	}
	return n
}

// Enabled reports whether some channel is configured (and valid).
func (n *Notifier) Enabled() bool { return n.mail != nil || n.hook != nil }

// Wake makes Run look at the outbox now instead of at its next timer; call
// it after committing a transaction that enqueued something. It never
// blocks.
func (n *Notifier) Wake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Backlog counts messages not yet delivered or abandoned (including those
// waiting for a retry), up to 10000. (*metrics.Metrics).SetOutboxBacklog
// takes it.
func (n *Notifier) Backlog(ctx context.Context) (int, error) {
	ms, err := n.db.NextDueOutbox(ctx, math.MaxInt64, backlogCap)
	return len(ms), err
}

// Run delivers until ctx is done, then returns nil. It sleeps on the
// clock's timers until the next message is due, at most PollInterval (new
// messages arrive without a signal unless Wake is called). It returns the
// configuration error at once if cfg is invalid, and nil at once if no
// channel is configured (messages stay queued for a later configuration).
func (n *Notifier) Run(ctx context.Context) error {
	if n.cfgErr != nil {
		return n.cfgErr
	}
	if !n.Enabled() {
		n.log.Info("notifications disabled: no SMTP host or webhook URL configured; messages stay queued")
		return nil
	}
	attrs := []any{"poll", n.cfg.PollInterval, "max_attempts", n.cfg.MaxAttempts}
	if n.mail != nil {
		attrs = append(attrs, "smtp", n.mail.addr(), "smtp_security", string(n.cfg.SMTP.security()))
	}
	if n.hook != nil {
		attrs = append(attrs, "webhook", n.hook.shown)
	}
	n.log.Info("notifier running", attrs...)

	var timer clock.Timer
	var errWait time.Duration
	for {
		_, _, wait, err := n.pass(ctx)
		if ctx.Err() != nil {
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		if err != nil {
			// The database is unhappy (busy, disk full): back off,
			// doubling up to 5 minutes, so the log is not flooded.
			errWait = min(max(2*errWait, time.Second), 5*time.Minute)
			wait = errWait
			n.log.Error("outbox pass failed", "err", err, "retry_in", wait)
		} else {
			errWait = 0
		}
		if timer == nil {
			timer = n.clk.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		if n.afterPass != nil {
			n.afterPass(wait)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C():
		case <-n.wake:
		}
	}
}

// DeliverDue delivers every message due now, once each, and returns how
// many were delivered and how many failed (to be retried or abandoned).
// Run calls it in its loop; tests call it to step deterministically. With
// no channel configured it does nothing. err is a database failure, ctx's
// error, or the configuration error.
func (n *Notifier) DeliverDue(ctx context.Context) (delivered, failed int, err error) {
	if n.cfgErr != nil {
		return 0, 0, n.cfgErr
	}
	if !n.Enabled() {
		return 0, 0, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.drainLocked(ctx)
}

// pass is DeliverDue plus how long to wait before the next one.
func (n *Notifier) pass(ctx context.Context) (delivered, failed int, wait time.Duration, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if delivered, failed, err = n.drainLocked(ctx); err != nil {
		return delivered, failed, 0, err
	}
	next, err := n.db.NextDueOutbox(ctx, math.MaxInt64, 1)
	if err != nil {
		return delivered, failed, 0, err
	}
	wait = n.cfg.PollInterval
	if len(next) > 0 {
		wait = min(max(time.Duration(next[0].NextAttemptNS-n.nowLocked()), 0), wait)
	}
	return delivered, failed, wait, nil
}

// drainLocked delivers the messages due at the start of the pass, each
// tried once (a failure schedules it after the pass's cutoff), then any
// stranded by a wall clock that was set back (see the package comment).
func (n *Notifier) drainLocked(ctx context.Context) (delivered, failed int, err error) {
	cutoff := n.nowLocked()
	down := map[channel]*deliveryError{} // servers that failed in this pass
	warned := false
	for {
		if err := ctx.Err(); err != nil {
			return delivered, failed, err
		}
		due, err := n.db.NextDueOutbox(ctx, cutoff, n.cfg.BatchSize)
		if err != nil {
			return delivered, failed, err
		}
		if len(due) == 0 {
			if due, err = n.strandedLocked(ctx, cutoff); err != nil || len(due) == 0 {
				return delivered, failed, err
			}
			if !warned {
				warned = true
				n.log.Warn("outbox messages are scheduled further ahead than any back-off: the wall clock must have been set back; delivering them now",
					"clock", time.Unix(0, cutoff).UTC(), "scheduled", time.Unix(0, due[0].NextAttemptNS).UTC())
			}
		}
		for _, m := range due {
			ok, err := n.attemptLocked(ctx, m, down)
			if err != nil {
				return delivered, failed, err
			}
			if ok {
				delivered++
			} else {
				failed++
			}
		}
	}
}

// strandedLocked returns the next batch of pending messages scheduled
// beyond the horizon, which no back-off of ours could have put there: they
// were scheduled before the wall clock was set back. Pending messages come
// earliest first, so when the earliest is beyond the horizon the whole
// batch is. An attempt moves each back within the horizon (or finishes
// it), so repeated calls terminate.
func (n *Notifier) strandedLocked(ctx context.Context, now int64) ([]store.OutboxMessage, error) {
	limit := addSat(now, int64(n.horizon()))
	head, err := n.db.NextDueOutbox(ctx, math.MaxInt64, 1)
	if err != nil || len(head) == 0 || head[0].NextAttemptNS <= limit {
		return nil, err
	}
	batch, err := n.db.NextDueOutbox(ctx, math.MaxInt64, n.cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	out := batch[:0]
	for _, m := range batch {
		if m.NextAttemptNS > limit {
			out = append(out, m)
		}
	}
	return out, nil
}

// horizon is how far ahead of now a message can legitimately be scheduled.
func (n *Notifier) horizon() time.Duration {
	return n.cfg.MaxBackoff + n.cfg.PollInterval + time.Minute
}

// nowLocked is the wall clock in nanoseconds, never earlier than the last
// value returned plus the monotonic time elapsed since.
func (n *Notifier) nowLocked() int64 {
	wall, inst := n.clk.Now().UnixNano(), n.clk.Instant()
	if n.hw.ok {
		wall = max(wall, addSat(n.hw.wall, inst-n.hw.inst))
	}
	n.hw.ok, n.hw.wall, n.hw.inst = true, wall, inst
	return wall
}

// attemptLocked tries every configured channel that has not yet accepted m
// and records the outcome. It reports whether m is now delivered; err is
// for failures to record (or ctx ending), not for failed deliveries.
func (n *Notifier) attemptLocked(ctx context.Context, m store.OutboxMessage, down map[channel]*deliveryError) (bool, error) {
	log := n.log.With("id", m.ID, "kind", kindToken(m.Kind), "attempt", m.Attempts+1)
	done := n.sent[m.ID]
	var errs []*deliveryError
	for _, ch := range []channel{chSMTP, chWebhook} {
		if done&ch != 0 || (ch == chSMTP && n.mail == nil) || (ch == chWebhook && n.hook == nil) {
			continue
		}
		if e := down[ch]; e != nil {
			errs = append(errs, e.skipped())
			continue
		}
		var err error
		if ch == chSMTP {
			err = n.mail.deliver(ctx, m)
		} else {
			// The signature's timestamp is what the receiver compares with
			// its own clock: the wall clock, whatever the schedule's frame.
			err = n.hook.deliver(ctx, m, n.clk.Now())
		}
		if err == nil {
			done |= ch
			continue
		}
		if ctx.Err() != nil {
			// Shutting down: an interrupted attempt does not count.
			n.rememberLocked(m.ID, done)
			return false, ctx.Err()
		}
		var de *deliveryError
		if !errors.As(err, &de) {
			de = &deliveryError{channel: ch.String(), stage: "send", err: err}
		}
		if de.server {
			down[ch] = de
		}
		errs = append(errs, de)
	}
	n.rememberLocked(m.ID, done)

	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	now := n.nowLocked()
	if len(errs) == 0 {
		delete(n.sent, m.ID)
		at := n.clk.Now().UnixNano() // for people: the wall clock
		err := n.db.WithTx(mctx, func(tx *store.Tx) error { return tx.MarkOutboxDelivered(mctx, m.ID, at) })
		if err = n.markErr(log, err); err != nil {
			return false, err
		}
		n.observe(ResultDelivered)
		log.Info("notification delivered", "recipient", m.Recipient)
		return true, nil
	}

	reason, permanent, floor := summarise(errs)
	attempts := m.Attempts + 1
	if permanent || attempts >= n.cfg.MaxAttempts {
		delete(n.sent, m.ID)
		err := n.db.WithTx(mctx, func(tx *store.Tx) error { return tx.MarkOutboxFailed(mctx, m.ID, reason, 0) })
		if err = n.markErr(log, err); err != nil {
			return false, err
		}
		n.observe(ResultAbandoned)
		why := "too many attempts"
		if permanent {
			why = "retrying cannot help"
		}
		log.Error("notification abandoned", "recipient", m.Recipient, "why", why, "err", reason)
		return false, nil
	}
	delay := n.backoffLocked(attempts, floor)
	err := n.db.WithTx(mctx, func(tx *store.Tx) error {
		return tx.MarkOutboxFailed(mctx, m.ID, reason, addSat(now, int64(delay)))
	})
	if err = n.markErr(log, err); err != nil {
		return false, err
	}
	n.observe(ResultFailed)
	log.Warn("notification not delivered; will retry", "recipient", m.Recipient, "retry_in", delay, "err", reason)
	return false, nil
}

// markErr passes on a failure to record a result, except that the row
// having gone (a factory reset meanwhile) is only worth a log line.
func (n *Notifier) markErr(log *slog.Logger, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		log.Warn("notification vanished from the outbox while it was being delivered")
		return nil
	}
	return err
}

func (n *Notifier) rememberLocked(id int64, done channel) {
	if done == 0 {
		delete(n.sent, id)
	} else {
		n.sent[id] = done
	}
}

func (n *Notifier) observe(result string) {
	if n.cfg.Observe != nil {
		n.cfg.Observe(result)
	}
}

// backoffLocked is the delay before retry number attempts (1 = the first
// retry): MinBackoff doubled per earlier retry, capped at MaxBackoff, then
// jittered into [d/2, d]; never below floor (a server's Retry-After) nor
// above MaxBackoff.
func (n *Notifier) backoffLocked(attempts int, floor time.Duration) time.Duration {
	d := n.cfg.MinBackoff
	for i := 1; i < attempts && d < n.cfg.MaxBackoff; i++ {
		if d > n.cfg.MaxBackoff/2 {
			d = n.cfg.MaxBackoff
			break
		}
		d *= 2
	}
	d = min(d, n.cfg.MaxBackoff)
	half := d / 2
	d = d - half + time.Duration(n.rnd.Int64N(int64(half)+1))
	return min(max(d, floor), n.cfg.MaxBackoff)
}

// summarise joins the channels' errors into one stored line and says
// whether any is permanent and the longest Retry-After.
func summarise(errs []*deliveryError) (reason string, permanent bool, floor time.Duration) {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Error()
		permanent = permanent || e.permanent
		floor = max(floor, e.retryAfter)
	}
	reason = headerText(strings.Join(parts, "; "), maxErrorLen)
	return reason, permanent, floor
}

// addSat is a+b for nanosecond instants, saturating instead of wrapping.
func addSat(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}
