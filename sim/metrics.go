package sim

import (
	"math"
	"sort"
	"time"

	"github.com/latchnvr/latch/model"
)

// class says who made an attempt, for the metrics.
type class uint8

const (
	classHuman    class = iota // a legitimate user typing
	classDevice                // a user's device with the current password
	classStale                 // a user's device with an old password
	classAttacker              // any attack
)

// Metrics are the figures of one run. Rates per user-year divide by the
// number of legitimate users times the virtual duration in years (365 d).
type Metrics struct {
	Duration  Duration `json:"duration"`
	Users     int      `json:"users"`
	UserYears float64  `json:"user_years"`
	Attempts  int64    `json:"attempts"`

	Legit    LegitMetrics     `json:"legit"`
	Victim   *VictimMetrics   `json:"victim,omitempty"`
	Attack   AttackMetrics    `json:"attack"`
	Attacks  []AttackerStats  `json:"attacks,omitempty"`
	Record   *RecordMetrics   `json:"recording,omitempty"`
	Clock    ClockMetrics     `json:"clock"`
	Daily    []DayMetrics     `json:"daily,omitempty"`
	Accounts []AccountMetrics `json:"top_accounts,omitempty"`
}

// LegitMetrics are about the legitimate users: their typed attempts and
// their devices' attempts with the current password.
type LegitMetrics struct {
	Attempts int64 `json:"attempts"`
	Admitted int64 `json:"admitted"`
	Refused  int64 `json:"refused"`
	// Availability is Admitted/Attempts (1 when there were none).
	Availability float64 `json:"availability"`
	Logins       int64   `json:"logins"`
	// Lockouts are episodes in which a user was refused before
	// verification, from the first refusal until the next admitted attempt
	// (false lockouts: every user here is legitimate).
	Lockouts            int64            `json:"lockouts"`
	LockoutMinutes      float64          `json:"lockout_minutes"`
	LockoutsPerUserYear float64          `json:"lockouts_per_user_year"`
	MinutesPerUserYear  float64          `json:"lockout_minutes_per_user_year"`
	HelpdeskUnlocks     int64            `json:"helpdesk_unlocks"`
	HelpdeskResets      int64            `json:"helpdesk_resets"`
	HelpdeskPerUserYear float64          `json:"helpdesk_per_user_year"`
	SelfServiceResets   int64            `json:"self_service_resets"`
	StaleDeviceAttempts int64            `json:"stale_device_attempts"`
	StaleDeviceRefused  int64            `json:"stale_device_refused"`
	RefusedByScope      map[string]int64 `json:"refused_by_scope,omitempty"`
}

// VictimMetrics are the legitimate attempts of the scenario's victim.
type VictimMetrics struct {
	User           string  `json:"user"`
	Attempts       int64   `json:"attempts"`
	Admitted       int64   `json:"admitted"`
	Availability   float64 `json:"availability"`
	Lockouts       int64   `json:"lockouts"`
	LockoutMinutes float64 `json:"lockout_minutes"`
}

// AttackMetrics are about the attackers. A verified guess is an admitted
// attempt with a wrong secret: the attacker learnt that one password is
// not the account's. Attackers never repeat a guess on an account, so
// every verified guess is distinct.
type AttackMetrics struct {
	Attempts int64 `json:"attempts"`
	Refused  int64 `json:"refused"`
	// Guesses counts verified guesses on every principal tried, whether it
	// exists or not (R-ENUM: the attacker cannot tell).
	Guesses int64 `json:"verified_guesses"`
	// AccountsTargeted counts principals tried; ExistingTargeted those
	// that are declared users.
	AccountsTargeted int `json:"accounts_targeted"`
	ExistingTargeted int `json:"existing_accounts_targeted"`
	// MaxGuesses is the most verified guesses on one existing account.
	MaxGuesses int64  `json:"max_guesses_one_account"`
	MaxAccount string `json:"max_account,omitempty"`
	// PCompromiseMax is the highest probability that an existing account
	// is compromised by its verified guesses; PCompromiseAny that at least
	// one is; ExpectedCompromised their sum (PasswordSpec documents the
	// model). Names that do not exist have no password to find.
	PCompromiseMax      float64 `json:"p_compromise_max"`
	PCompromiseAny      float64 `json:"p_compromise_any"`
	ExpectedCompromised float64 `json:"expected_compromised"`
	// TakenOver counts attempts where an attacker presented the right
	// secret (a stuffing list with reused passwords) and was let in;
	// FirstTakeover is when the first happened.
	TakenOver     int64     `json:"taken_over"`
	FirstTakeover *Duration `json:"first_takeover,omitempty"`
}

// AttackerStats are one attack's figures.
type AttackerStats struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Sources   int    `json:"sources"`
	Attempts  int64  `json:"attempts"`
	Refused   int64  `json:"refused"`
	Guesses   int64  `json:"verified_guesses"`
	TakenOver int64  `json:"taken_over"`
}

// AccountMetrics is one account's verified guesses.
type AccountMetrics struct {
	Account     string  `json:"account"`
	Guesses     int64   `json:"verified_guesses"`
	PCompromise float64 `json:"p_compromise"`
}

// RecordMetrics is recording continuity: each camera should close
// 1h/segment segments in every full virtual hour.
type RecordMetrics struct {
	Cameras    int     `json:"cameras"`
	Segments   int64   `json:"segments"`
	Hours      int64   `json:"camera_hours"`
	Complete   int64   `json:"complete_camera_hours"`
	Continuity float64 `json:"continuity"`
}

// ClockMetrics counts clock chaos.
type ClockMetrics struct {
	WallJumps int `json:"wall_jumps"`
	Restarts  int `json:"restarts"`
}

// DayMetrics is one virtual day, for plots.
type DayMetrics struct {
	Day            int     `json:"day"`
	LegitRefused   int64   `json:"legit_refused"`
	LockoutMinutes float64 `json:"lockout_minutes"`
	Guesses        int64   `json:"verified_guesses"`
}

// collector accumulates metrics during a run; it is indexed by number, so
// recording an attempt allocates nothing.
type collector struct {
	m        Metrics
	victim   UserID
	guesses  []int64 // per principal
	targeted []bool
	exists   []bool
	scopes   [8]int64
	daily    []DayMetrics
	restarts int
	// wallJumps counts steps while running (RTC resets included).
	wallJumps int
	segments  int64
	camHours  int64
	complete  int64
	cameras   int
}

func newCollector(principals int, victim UserID) *collector {
	return &collector{victim: victim, guesses: make([]int64, principals), targeted: make([]bool, principals)}
}

func (c *collector) day(now model.Instant) *DayMetrics {
	d := int(time.Duration(now) / (24 * time.Hour))
	for len(c.daily) <= d {
		c.daily = append(c.daily, DayMetrics{Day: len(c.daily)})
	}
	return &c.daily[d]
}

func (c *collector) attempt(s *sim, a Attempt, cl class, atk int, d *model.Decision) {
	refused := d.Verdict == model.Refused
	switch cl {
	case classHuman, classDevice:
		l := &c.m.Legit
		l.Attempts++
		if refused {
			l.Refused++
			c.scopes[d.Scope]++
			c.day(s.now).LegitRefused++
		} else {
			l.Admitted++
		}
		if a.User == c.victim {
			v := c.m.Victim
			v.Attempts++
			if !refused {
				v.Admitted++
			}
		}
	case classStale:
		c.m.Legit.StaleDeviceAttempts++
		if refused {
			c.m.Legit.StaleDeviceRefused++
		}
	case classAttacker:
		at := &c.m.Attack
		one := &c.m.Attacks[atk]
		at.Attempts++
		one.Attempts++
		c.targeted[a.User] = true
		switch d.Verdict {
		case model.Refused:
			at.Refused++
			one.Refused++
		case model.Failed:
			c.guesses[a.User]++
			one.Guesses++
			c.day(s.now).Guesses++
		case model.Allowed:
			if at.TakenOver == 0 {
				t := Duration(s.now)
				at.FirstTakeover = &t
			}
			at.TakenOver++
			one.TakenOver++
		}
	}
}

func (c *collector) lockout(s *sim, u UserID, since model.Instant) {
	mins := time.Duration(s.now - since).Minutes()
	c.m.Legit.Lockouts++
	c.m.Legit.LockoutMinutes += mins
	c.day(s.now).LockoutMinutes += mins
	if u == c.victim {
		c.m.Victim.Lockouts++
		c.m.Victim.LockoutMinutes += mins
	}
}

// pCompromise is P(G ≤ n) for the log-normal guesses-to-crack G.
func pCompromise(n int64, p PasswordSpec) float64 {
	if n <= 0 {
		return 0
	}
	z := (math.Log10(float64(n)) - math.Log10(p.MedianGuesses)) / p.SigmaLog10
	return 0.5 * math.Erfc(-z/math.Sqrt2)
}

// topAccounts is how many accounts the metrics list by guesses.
const topAccounts = 10

func (c *collector) finish(s *sim, sc *Scenario, users int, dur time.Duration) Metrics {
	m := c.m
	m.Duration = Duration(dur)
	m.Users = users
	m.UserYears = float64(users) * dur.Hours() / (365 * 24)
	m.Attempts = s.attempts
	l := &m.Legit
	l.Availability = ratio(l.Admitted, l.Attempts)
	if m.UserYears > 0 {
		l.LockoutsPerUserYear = float64(l.Lockouts) / m.UserYears
		l.MinutesPerUserYear = l.LockoutMinutes / m.UserYears
		l.HelpdeskPerUserYear = float64(l.HelpdeskUnlocks+l.HelpdeskResets) / m.UserYears
	}
	for sc, n := range c.scopes {
		if n > 0 {
			if l.RefusedByScope == nil {
				l.RefusedByScope = map[string]int64{}
			}
			l.RefusedByScope[model.Scope(sc).String()] = n
		}
	}
	if v := m.Victim; v != nil {
		v.Availability = ratio(v.Admitted, v.Attempts)
	}
	at := &m.Attack
	pNone := 1.0
	var accts []AccountMetrics
	for u, g := range c.guesses {
		if c.targeted[u] {
			at.AccountsTargeted++
			if c.exists[u] {
				at.ExistingTargeted++
			}
		}
		at.Guesses += g
		if g == 0 || !c.exists[u] {
			continue
		}
		p := pCompromise(g, sc.Passwords)
		pNone *= 1 - p
		at.ExpectedCompromised += p
		if g > at.MaxGuesses {
			at.MaxGuesses, at.MaxAccount, at.PCompromiseMax = g, string(s.uni.Principals[u]), p
		}
		accts = append(accts, AccountMetrics{Account: string(s.uni.Principals[u]), Guesses: g, PCompromise: p})
	}
	at.PCompromiseAny = max(1-pNone, at.PCompromiseMax) // equal up to rounding when one account dominates
	sort.SliceStable(accts, func(i, j int) bool {
		if accts[i].Guesses != accts[j].Guesses {
			return accts[i].Guesses > accts[j].Guesses
		}
		return accts[i].Account < accts[j].Account
	})
	if len(accts) > topAccounts {
		accts = accts[:topAccounts]
	}
	m.Accounts = accts
	if c.cameras > 0 {
		m.Record = &RecordMetrics{Cameras: c.cameras, Segments: c.segments, Hours: c.camHours, Complete: c.complete}
		m.Record.Continuity = ratio(c.complete, c.camHours)
	}
	m.Clock = ClockMetrics{WallJumps: c.wallJumps, Restarts: c.restarts}
	days := int((dur + 24*time.Hour - 1) / (24 * time.Hour))
	for len(c.daily) < days {
		c.daily = append(c.daily, DayMetrics{Day: len(c.daily)})
	}
	m.Daily = c.daily
	return m
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}
