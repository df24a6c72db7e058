package soak

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Report is what a run of the http engine found and measured.
type Report struct {
	Warp    float64     `json:"warp"`
	Cameras int         `json:"cameras"`
	Boots   []*BootInfo `json:"boots"`
	// Faults injected.
	Kills      int        `json:"kills"`
	Terms      int        `json:"terms"`
	Downgrades int        `json:"downgrades"`
	Steps      []StepInfo `json:"steps,omitempty"`

	// Attempts are the simulator's; OwnAttempts the engine's own admin
	// logins. Every one of them is compared with the shadow model.
	Attempts    int64 `json:"attempts"`
	OwnAttempts int64 `json:"own_attempts"`
	// Answers by status, over all compared attempts.
	Status200   int64 `json:"status_200"`
	Status401   int64 `json:"status_401"`
	Status429   int64 `json:"status_429"`
	StatusOther int64 `json:"status_other"`
	// ConsoleSkipped counts console attempts (not HTTP; shadow only).
	ConsoleSkipped int64 `json:"console_skipped,omitempty"`
	Unlocks        int   `json:"unlocks"`
	Resets         int   `json:"resets"`

	// Disagreements between the server's answers and the shadow model;
	// the first ones in full, each with the trace line that caused it.
	Disagreements int64          `json:"disagreements"`
	Examples      []Disagreement `json:"examples,omitempty"`

	// Attempts by a declared admin from a source familiar to it (per the
	// shadow): how many, how many the server refused for the admin's own
	// pair or source (its own typos), and how many for anything else
	// (P-NODOS broken; must be 0).
	AdminFamiliar        int64 `json:"admin_familiar"`
	AdminFamiliarOwnLock int64 `json:"admin_familiar_own_lock"`
	AdminFamiliarRefused int64 `json:"admin_familiar_refused"`

	// Lag is how far the server's virtual clock ran ahead of the
	// simulator's when an attempt was decided (the engine could not keep
	// the pace); sleeping keeps it near zero when it can.
	Lag LagStats `json:"lag"`

	// RTT is the round trip of one login over loopback, by answer.
	RTT RTTStats `json:"rtt"`

	Noise    NoiseStats   `json:"noise"`
	Audit    AuditStats   `json:"audit"`
	Segments SegmentStats `json:"segments"`
	Keys     KeyStats     `json:"keys"`

	RealSeconds    float64 `json:"real_s"`
	VirtualSeconds float64 `json:"virtual_s"`
	// Speedup is virtual over real time, restarts and checks included.
	Speedup float64 `json:"speedup"`
	// DBBytes is the database's size at the end (with its WAL).
	DBBytes int64 `json:"db_bytes"`

	RSS []RSSSample `json:"rss,omitempty"`

	// Problems are every other check that failed (database, files, audit
	// counts, HTTP errors). A passing run has none.
	Problems []string `json:"problems,omitempty"`
}

// StepInfo is one injected wall-clock step.
type StepInfo struct {
	Boot int           `json:"boot"`
	At   time.Duration `json:"at"`
	By   time.Duration `json:"by"`
}

// Disagreement is one answer that differs from the shadow model.
type Disagreement struct {
	Boot    int             `json:"boot"`
	Instant int64           `json:"instant"`
	Trace   json.RawMessage `json:"trace"`
	Server  string          `json:"server"`
	Model   string          `json:"model"`
	Why     string          `json:"why"`
}

// LagStats summarise the pacing lag.
type LagStats struct {
	N      int64         `json:"n"`
	Sum    time.Duration `json:"sum"`
	Max    time.Duration `json:"max"`
	Over1m int64         `json:"over_1m"` // decisions more than a virtual minute late
}

func (l *LagStats) add(d time.Duration) {
	l.N++
	l.Sum += d
	if d > l.Max {
		l.Max = d
	}
	if d > time.Minute {
		l.Over1m++
	}
}

// Mean is the average lag.
func (l LagStats) Mean() time.Duration {
	if l.N == 0 {
		return 0
	}
	return l.Sum / time.Duration(l.N)
}

// RTTStats are login round trips by status (200, 401, 429).
type RTTStats struct {
	N   [3]int64         `json:"n"`
	Sum [3]time.Duration `json:"sum"`
}

func rttIndex(status int) int {
	switch status {
	case http.StatusOK:
		return 0
	case http.StatusUnauthorized:
		return 1
	}
	return 2
}

func (r *RTTStats) add(status int, d time.Duration) {
	i := rttIndex(status)
	r.N[i]++
	r.Sum[i] += d
}

// Mean is the mean round trip of answers with status.
func (r RTTStats) Mean(status int) time.Duration {
	i := rttIndex(status)
	if r.N[i] == 0 {
		return 0
	}
	return r.Sum[i] / time.Duration(r.N[i])
}

// NoiseStats count the concurrent logins sent around kills.
type NoiseStats struct {
	Sent     int64 `json:"sent"`
	Got401   int64 `json:"got_401"`
	Got429   int64 `json:"got_429"`
	GotOther int64 `json:"got_other"`
	// Unanswered requests were cut by the kill: decided or not.
	Unanswered int64 `json:"unanswered"`
	Rec401     int64 `json:"recorded_401"`
	Rec429     int64 `json:"recorded_429"`
	// Checked counts answered failures found persisted at their instant.
	Checked int64 `json:"failures_checked"`
}

// AuditStats reconcile the answers with the audit log.
type AuditStats struct {
	Success     int64 `json:"success"`
	WrongSecret int64 `json:"wrong_secret_and_repeat"`
	Refused     int64 `json:"refused"`
	Rows        int64 `json:"rows"`
	Verified    int   `json:"chain_rows_verified"`
}

// SegmentStats describe the recordings at the end.
type SegmentStats struct {
	Indexed    int   `json:"indexed"`
	Bytes      int64 `json:"bytes"`
	Garbage    int   `json:"garbage"`
	Orphans    int   `json:"orphans"`
	TempFiles  int   `json:"temp_files"`
	MaxID      int64 `json:"max_id"`
	Deleted    int64 `json:"deleted"` // indexed once, gone now (retention)
	Checked    int   `json:"abutting_checked"`
	Boundaries int   `json:"boundaries_checked"`
	// MaxTail is the most recording lost before a stop (virtual), MaxHead
	// the longest wait for the first segment after a boot.
	MaxTail time.Duration `json:"max_tail"`
	MaxHead time.Duration `json:"max_head"`
	// Full segments, how many had fewer frames than the camera's rate
	// gives (the camera fell behind), and the fewest frames in one.
	Full      int   `json:"full"`
	Short     int   `json:"short"`
	MinFrames int64 `json:"min_frames"`
	// StallGaps are gaps in which a camera captured no frame at all (the
	// frames on either side are consecutive), and their total length
	// (virtual); HostStallGapTime is the part the host explains (the
	// server's threads were waiting for a CPU: attributeStall).
	StallGaps        int           `json:"stall_gaps"`
	StallGapTime     time.Duration `json:"stall_gap_time"`
	HostStallGapTime time.Duration `json:"host_stall_gap_time"`
	// HostLateStarts are boots whose first segment came late because the
	// host did not run the server.
	HostLateStarts int `json:"host_late_starts,omitempty"`
}

// KeyStats describe the persisted key states checked at restarts.
type KeyStats struct {
	Checked  int64 `json:"checked"`
	AtEnd    int   `json:"at_end"`
	Restored int64 `json:"restored"`
}

// Reanchors counts the server's re-anchors after wall-clock steps it saw.
func (r *Report) Reanchors() int {
	n := 0
	for _, b := range r.Boots {
		n += b.Reanchors
	}
	return n
}

// PhantomSteps counts re-anchors that no injected step explains: the
// server's step detector reacting to its own warped clock (see the
// package doc).
func (r *Report) PhantomSteps() int {
	n := 0
	for _, b := range r.Boots {
		n += max(0, b.Reanchors-b.InjectedSteps)
	}
	return n
}

func (r *Report) addProblem(p string) {
	if len(r.Problems) < 200 {
		r.Problems = append(r.Problems, p)
	} else if len(r.Problems) == 200 {
		r.Problems = append(r.Problems, "… more problems not kept")
	}
}

func (r *Report) count(status int, own bool) {
	if own {
		r.OwnAttempts++
	} else {
		r.Attempts++
	}
	switch status {
	case http.StatusOK:
		r.Status200++
	case http.StatusUnauthorized:
		r.Status401++
	case http.StatusTooManyRequests:
		r.Status429++
	default:
		r.StatusOther++
	}
}

// RSSThirds are the first third's median and the last third's maximum of
// the samples of one boot (the memory-growth bound).
func RSSThirds(samples []RSSSample, boot int) (firstMedian, lastMax int64, n int) {
	var s []RSSSample
	for _, x := range samples {
		if x.Boot == boot {
			s = append(s, x)
		}
	}
	n = len(s)
	if n < 3 {
		return 0, 0, n
	}
	first := make([]int64, 0, n/3)
	for _, x := range s[:n/3] {
		first = append(first, x.RSSKiB)
	}
	sort.Slice(first, func(i, j int) bool { return first[i] < first[j] })
	firstMedian = first[len(first)/2]
	for _, x := range s[n-n/3:] {
		lastMax = max(lastMax, x.RSSKiB)
	}
	return firstMedian, lastMax, n
}

// MaxRunWait is the most run-queue wait the server's threads accumulated
// between two samples (ms per sample interval), over every boot.
func MaxRunWait(samples []RSSSample) float64 {
	m := 0.0
	for i := 1; i < len(samples); i++ {
		if samples[i].Boot == samples[i-1].Boot {
			m = max(m, samples[i].RunWaitMs-samples[i-1].RunWaitMs)
		}
	}
	return m
}

// Summary is a few lines for people.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "boots %d (kill -9 %d, SIGTERM %d, downgrades %d), wall steps %d, real %.0fs, virtual %s, speed-up %.0f×\n",
		len(r.Boots), r.Kills, r.Terms, r.Downgrades, len(r.Steps), r.RealSeconds,
		time.Duration(r.VirtualSeconds*float64(time.Second)).Round(time.Second), r.Speedup)
	fmt.Fprintf(&b, "attempts %d (+%d own): 200 %d, 401 %d, 429 %d, other %d; unlocks %d, resets %d\n",
		r.Attempts, r.OwnAttempts, r.Status200, r.Status401, r.Status429, r.StatusOther, r.Unlocks, r.Resets)
	fmt.Fprintf(&b, "mean round trip: 200 %s, 401 %s, 429 %s\n", r.RTT.Mean(200).Round(time.Microsecond), r.RTT.Mean(401).Round(time.Microsecond), r.RTT.Mean(429).Round(time.Microsecond))
	fmt.Fprintf(&b, "disagreements with the model: %d; admin from familiar sources: %d attempts, %d refused by own lock, %d refused otherwise\n",
		r.Disagreements, r.AdminFamiliar, r.AdminFamiliarOwnLock, r.AdminFamiliarRefused)
	fmt.Fprintf(&b, "pacing lag: mean %s, max %s, %d over 1m; server re-anchors on wall steps: %d, of which phantom (no step injected) %d\n",
		r.Lag.Mean().Round(time.Millisecond), r.Lag.Max.Round(time.Millisecond), r.Lag.Over1m, r.Reanchors(), r.PhantomSteps())
	fmt.Fprintf(&b, "keys checked against the shadow at stops: %d, at end %d; audit rows %d (chain verified %d)\n",
		r.Keys.Checked, r.Keys.AtEnd, r.Audit.Rows, r.Audit.Verified)
	fmt.Fprintf(&b, "noise around kills and steps: sent %d, got 401 %d / 429 %d (%d cut by kills), recorded 401 %d / 429 %d; %d acknowledged failures checked in their keys\n",
		r.Noise.Sent, r.Noise.Got401, r.Noise.Got429, r.Noise.Unanswered, r.Noise.Rec401, r.Noise.Rec429, r.Noise.Checked)
	fmt.Fprintf(&b, "segments: %d indexed (%d MB), %d deleted by retention, %d garbage, %d orphan files, %d abutting pairs and %d boot boundaries checked (max tail lost %s, max head %s); %d of %d full segments short of frames (fewest %d); db %.1f MB\n",
		r.Segments.Indexed, r.Segments.Bytes>>20, r.Segments.Deleted, r.Segments.Garbage, r.Segments.Orphans,
		r.Segments.Checked, r.Segments.Boundaries, r.Segments.MaxTail.Round(time.Second), r.Segments.MaxHead.Round(time.Second),
		r.Segments.Short, r.Segments.Full, r.Segments.MinFrames, float64(r.DBBytes)/(1<<20))
	if r.Segments.StallGaps > 0 || r.Segments.HostLateStarts > 0 {
		fmt.Fprintf(&b, "stall gaps (a camera captured nothing for a whole slot: consecutive frames on either side): %d, %s in all, %s of it while the host starved the server; %d boots' cameras started late for the host\n",
			r.Segments.StallGaps, r.Segments.StallGapTime, r.Segments.HostStallGapTime, r.Segments.HostLateStarts)
	}
	if len(r.RSS) > 1 {
		fmt.Fprintf(&b, "server threads waiting for a CPU: at most %.0f ms per %.0f ms sample\n",
			MaxRunWait(r.RSS), 1000*(r.RSS[1].RealSeconds-r.RSS[0].RealSeconds))
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(&b, "%d problems, first: %s\n", len(r.Problems), r.Problems[0])
	}
	return b.String()
}
