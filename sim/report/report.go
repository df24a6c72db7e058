// Package report renders simulator results for people and programs: text
// tables for the terminal, JSON, and report directories (Markdown with PNG
// and SVG plots drawn with gonum.org/v1/plot, CSV for sweeps, and the
// recommended policy as a file `latch` accepts).
//
// It owns presentation only: every number comes from package sim.
package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchnvr/latch/model/policyfile"
	"github.com/latchnvr/latch/sim"
)

// Header writes what makes a run reproducible: scenario, policy, seed,
// duration and engine.
func Header(w io.Writer, sc *sim.Scenario, policy sim.PolicyInfo, seed uint64, dur sim.Duration, engine string) {
	fmt.Fprintf(w, "scenario  %s (%s)", sc.Name, sc.Source)
	if sc.Description != "" {
		fmt.Fprintf(w, ": %s", sc.Description)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "policy    %s\n", policy)
	fmt.Fprintf(w, "seed      %d   duration %s   engine %s\n", seed, dur, engine)
}

// Int formats n with thousands separators.
func Int(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Pct formats a fraction as a percentage.
func Pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 3, 64) + "%" }

// Prob formats a probability compactly.
func Prob(f float64) string {
	switch {
	case f == 0:
		return "0"
	case f < 0.0001:
		return strconv.FormatFloat(f, 'e', 1, 64)
	case f > 0.9999 && f < 1:
		return ">99.99%"
	}
	return strconv.FormatFloat(100*f, 'f', 2, 64) + "%"
}

func f1(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
func f2(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

// Table writes one run's metrics as a two-column table.
func Table(w io.Writer, r *sim.Result) {
	m := &r.Metrics
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s\t%s\n", k, v) }
	l := &m.Legit
	row("legitimate users", fmt.Sprintf("%d (%.2f user-years)", m.Users, m.UserYears))
	row("legit attempts (refused)", Int(l.Attempts)+" ("+Int(l.Refused)+")")
	row("legit availability", Pct(l.Availability))
	row("false lockouts / user-year", f2(l.LockoutsPerUserYear)+fmt.Sprintf("  (%d episodes)", l.Lockouts))
	row("minutes locked out / user-year", f1(l.MinutesPerUserYear)+"  ("+f1(l.LockoutMinutes)+" min in all)")
	row("helpdesk unlocks + resets", fmt.Sprintf("%d + %d  (%s / user-year)", l.HelpdeskUnlocks, l.HelpdeskResets, f2(l.HelpdeskPerUserYear)))
	row("self-service resets", Int(l.SelfServiceResets))
	if l.StaleDeviceAttempts > 0 {
		row("stale-device attempts (refused)", Int(l.StaleDeviceAttempts)+" ("+Int(l.StaleDeviceRefused)+")")
	}
	if len(l.RefusedByScope) > 0 {
		var parts []string
		for _, s := range []string{"pair", "source", "principal", "held", "disabled", "console"} {
			if n := l.RefusedByScope[s]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", s, n))
			}
		}
		row("legit refusals by key", strings.Join(parts, ", "))
	}
	if v := m.Victim; v != nil {
		row("victim "+v.User+": availability", fmt.Sprintf("%s  (%d of %d admitted)", Pct(v.Availability), v.Admitted, v.Attempts))
		row("victim "+v.User+": locked out", fmt.Sprintf("%s min in %d episodes", f1(v.LockoutMinutes), v.Lockouts))
	}
	a := &m.Attack
	row("attacker attempts (refused)", Int(a.Attempts)+" ("+Int(a.Refused)+")")
	row("verified guesses, all accounts", Int(a.Guesses)+fmt.Sprintf("  (%s targeted, %s of them exist)", plural(a.AccountsTargeted, "account"), Int(int64(a.ExistingTargeted))))
	if a.MaxAccount != "" {
		row("verified guesses, most on one", Int(a.MaxGuesses)+" ("+a.MaxAccount+")")
	}
	row("P(compromise): that account / any", Prob(a.PCompromiseMax)+" / "+Prob(a.PCompromiseAny)+"  (expected "+f2(a.ExpectedCompromised)+" accounts)")
	if a.TakenOver > 0 {
		row("attacker logins with a right password", Int(a.TakenOver)+"  (first after "+sim.FormatDuration(a.FirstTakeover.D().Round(time.Minute))+")")
	}
	for _, at := range m.Attacks {
		row(fmt.Sprintf("  %s (%s, %s)", at.Name, at.Kind, plural(at.Sources, "source")),
			fmt.Sprintf("%s attempts, %s refused, %s verified guesses", Int(at.Attempts), Int(at.Refused), Int(at.Guesses)))
	}
	if rc := m.Record; rc != nil {
		row("recording continuity", fmt.Sprintf("%s  (%d cameras, %s of %s camera-hours complete)", Pct(rc.Continuity), rc.Cameras, Int(rc.Complete), Int(rc.Hours)))
	}
	if m.Clock.WallJumps+m.Clock.Restarts > 0 {
		row("clock: wall jumps / restarts", fmt.Sprintf("%d / %d", m.Clock.WallJumps, m.Clock.Restarts))
	}
	tw.Flush()
}

// Footer writes the run's hash, speed and the command that repeats it.
func Footer(w io.Writer, r *sim.Result) {
	fmt.Fprintf(w, "trace hash %s   %s events, %s attempts in %.2fs: %s attempts/s, virtual/real %s×\n",
		r.TraceHash, Int(r.Events), Int(r.Attempts), r.Speed.Seconds, Int(int64(r.Speed.AttemptsPerSecond)), Int(int64(r.Speed.Speedup)))
	fmt.Fprintf(w, "reproduce: %s\n", r.Reproduce())
}

// JSON writes v indented.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// compareColumns are the columns of a comparison, shared by the terminal
// table, Markdown and CSV.
var compareColumns = []struct {
	head string
	f    func(*sim.Result) string
}{
	{"policy", func(r *sim.Result) string { return r.Policy.Preset }},
	{"legit avail", func(r *sim.Result) string { return Pct(r.Metrics.Legit.Availability) }},
	{"lockouts/uy", func(r *sim.Result) string { return f2(r.Metrics.Legit.LockoutsPerUserYear) }},
	{"locked min/uy", func(r *sim.Result) string { return f1(r.Metrics.Legit.MinutesPerUserYear) }},
	{"helpdesk/uy", func(r *sim.Result) string { return f2(r.Metrics.Legit.HelpdeskPerUserYear) }},
	{"victim avail", func(r *sim.Result) string {
		if v := r.Metrics.Victim; v != nil {
			return Pct(v.Availability)
		}
		return "—"
	}},
	{"attacker tries", func(r *sim.Result) string { return Int(r.Metrics.Attack.Attempts) }},
	{"verified guesses", func(r *sim.Result) string { return Int(r.Metrics.Attack.Guesses) }},
	{"max/account", func(r *sim.Result) string { return Int(r.Metrics.Attack.MaxGuesses) }},
	{"P(that acct)", func(r *sim.Result) string { return Prob(r.Metrics.Attack.PCompromiseMax) }},
	{"P(any)", func(r *sim.Result) string { return Prob(r.Metrics.Attack.PCompromiseAny) }},
	{"taken over", func(r *sim.Result) string { return Int(r.Metrics.Attack.TakenOver) }},
	{"1st takeover", func(r *sim.Result) string {
		if t := r.Metrics.Attack.FirstTakeover; t != nil {
			return sim.FormatDuration(t.D().Round(time.Minute))
		}
		return "—"
	}},
	{"recording", func(r *sim.Result) string {
		if rc := r.Metrics.Record; rc != nil {
			return Pct(rc.Continuity)
		}
		return "—"
	}},
}

// CompareTable writes one row per policy.
func CompareTable(w io.Writer, rs []*sim.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, c := range compareColumns {
		fmt.Fprintf(tw, "%s\t", c.head)
	}
	fmt.Fprintln(tw)
	for _, r := range rs {
		for _, c := range compareColumns {
			fmt.Fprintf(tw, "%s\t", c.f(r))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func markdownTable(w io.Writer, heads []string, rows [][]string) {
	fmt.Fprintf(w, "| %s |\n|", strings.Join(heads, " | "))
	for range heads {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
}

// WriteRun writes DIR/report.md, DIR/result.json and DIR/daily.{png,svg}.
func WriteRun(dir string, sc *sim.Scenario, r *sim.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "result.json"), func(w io.Writer) error { return JSON(w, r) }); err != nil {
		return err
	}
	if err := dailyPlot(r, filepath.Join(dir, "daily")); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "report.md"), func(w io.Writer) error {
		fmt.Fprintf(w, "# latchsim run: %s\n\n", sc.Name)
		fmt.Fprintf(w, "%s\n\n", sc.Description)
		fmt.Fprintf(w, "- policy: %s\n- seed: %d\n- duration: %s (virtual)\n- engine: %s\n- trace hash: `%s`\n- reproduce: `%s`\n\n",
			r.Policy, r.Seed, r.Duration, r.Engine, r.TraceHash, r.Reproduce())
		fmt.Fprintln(w, "## Metrics\n\n```")
		Table(w, r)
		fmt.Fprint(w, "```\n\n## Per day\n\n![per day](daily.svg)\n\n")
		fmt.Fprintf(w, "Passwords: guesses-to-crack log-normal, median %g, σ %g decades (P(compromise) = P(G ≤ verified guesses)).\n\n",
			sc.Passwords.MedianGuesses, sc.Passwords.SigmaLog10)
		fmt.Fprintf(w, "Speed: %s attempts in %.2f s real time (%s attempts/s; virtual/real %s×).\n",
			Int(r.Attempts), r.Speed.Seconds, Int(int64(r.Speed.AttemptsPerSecond)), Int(int64(r.Speed.Speedup)))
		return nil
	})
}

// WriteCompare writes DIR/compare.md, compare.json, compare.csv and
// compare.{png,svg}.
func WriteCompare(dir string, sc *sim.Scenario, rs []*sim.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "compare.json"), func(w io.Writer) error { return JSON(w, rs) }); err != nil {
		return err
	}
	heads := make([]string, len(compareColumns))
	for i, c := range compareColumns {
		heads[i] = c.head
	}
	rows := make([][]string, len(rs))
	for i, r := range rs {
		for _, c := range compareColumns {
			rows[i] = append(rows[i], c.f(r))
		}
	}
	if err := writeFile(filepath.Join(dir, "compare.csv"), func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(heads)
		cw.WriteAll(rows)
		return cw.Error()
	}); err != nil {
		return err
	}
	if err := comparePlot(sc, rs, filepath.Join(dir, "compare")); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "compare.md"), func(w io.Writer) error {
		fmt.Fprintf(w, "# latchsim compare: %s\n\n%s\n\n", sc.Name, sc.Description)
		if len(rs) > 0 {
			fmt.Fprintf(w, "Same scenario, seed %d and %s of virtual time through each policy (engine %s).\n\n", rs[0].Seed, rs[0].Duration, rs[0].Engine)
		}
		markdownTable(w, heads, rows)
		fmt.Fprintln(w, "\n![compare](compare.svg)")
		fmt.Fprintln(w, "\n*uy*: per legitimate user-year. *verified guesses*: wrong passwords the attackers got checked (refusals check nothing). "+
			"*P*: probability of compromise under the scenario's password-strength distribution.")
		fmt.Fprintln(w, "\n| policy | trace hash | reproduce |\n|---|---|---|")
		for _, r := range rs {
			fmt.Fprintf(w, "| %s | `%s` | `%s` |\n", r.Policy.Preset, r.TraceHash, r.Reproduce())
		}
		return nil
	})
}

// sweepHeads are a sweep CSV's metric columns.
var sweepHeads = []string{"legit_availability", "lockouts_per_user_year", "lockout_minutes_per_user_year", "helpdesk_per_user_year",
	"victim_availability", "attacker_attempts", "verified_guesses", "max_guesses_one_account", "p_compromise_max", "p_compromise_any",
	"taken_over", "recording_continuity", "pareto", "recommended", "trace_hash", "error"}

// SweepCSV writes one line per cell.
func SweepCSV(w io.Writer, sr *sim.SweepResult) error {
	cw := csv.NewWriter(w)
	head := []string{"cell"}
	for _, v := range sr.Vary {
		head = append(head, v.Field)
	}
	cw.Write(append(head, sweepHeads...))
	g := func(f float64) string { return strconv.FormatFloat(f, 'g', 8, 64) }
	for i := range sr.Cells {
		c := &sr.Cells[i]
		rec := append([]string{strconv.Itoa(c.Index)}, c.Values...)
		if r := c.Result; r != nil {
			m := &r.Metrics
			victim, rec2 := "", ""
			if m.Victim != nil {
				victim = g(m.Victim.Availability)
			}
			if m.Record != nil {
				rec2 = g(m.Record.Continuity)
			}
			rec = append(rec, g(m.Legit.Availability), g(m.Legit.LockoutsPerUserYear), g(m.Legit.MinutesPerUserYear), g(m.Legit.HelpdeskPerUserYear),
				victim, strconv.FormatInt(m.Attack.Attempts, 10), strconv.FormatInt(m.Attack.Guesses, 10), strconv.FormatInt(m.Attack.MaxGuesses, 10),
				g(m.Attack.PCompromiseMax), g(m.Attack.PCompromiseAny), strconv.FormatInt(m.Attack.TakenOver, 10), rec2,
				strconv.FormatBool(c.Pareto), strconv.FormatBool(i == sr.Recommended), r.TraceHash, "")
		} else {
			rec = append(rec, make([]string, len(sweepHeads)-1)...)
			rec = append(rec, fmt.Sprint(c.Err))
		}
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

// SweepTable writes the Pareto cells and the recommendation.
func SweepTable(w io.Writer, sr *sim.SweepResult) {
	ran, bad := 0, 0
	for i := range sr.Cells {
		if sr.Cells[i].Result != nil {
			ran++
		} else {
			bad++
		}
	}
	fmt.Fprintf(w, "%d cells: %d ran, %d invalid or failed. Pareto front (verified guesses vs minutes locked out per user-year):\n", len(sr.Cells), ran, bad)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "cell\t")
	for _, v := range sr.Vary {
		fmt.Fprintf(tw, "%s\t", v.Field)
	}
	fmt.Fprint(tw, "verified guesses\tlocked min/uy\tlegit avail\tvictim avail\tP(any)\t\n")
	for i := range sr.Cells {
		c := &sr.Cells[i]
		if !c.Pareto {
			continue
		}
		fmt.Fprintf(tw, "%d\t", c.Index)
		for _, v := range c.Values {
			fmt.Fprintf(tw, "%s\t", v)
		}
		m := &c.Result.Metrics
		victim := "—"
		if m.Victim != nil {
			victim = Pct(m.Victim.Availability)
		}
		mark := ""
		if i == sr.Recommended {
			mark = "  ← recommended"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", Int(m.Attack.Guesses), f1(m.Legit.MinutesPerUserYear), Pct(m.Legit.Availability), victim, Prob(m.Attack.PCompromiseAny), mark)
	}
	tw.Flush()
	if sr.Recommended >= 0 {
		fmt.Fprintf(w, "recommended: %s\n", strings.Join(sr.Cells[sr.Recommended].Sets, " "))
	}
}

// WriteSweep writes DIR/sweep.csv, sweep.md, pareto.{png,svg} and
// recommended-policy.yaml.
func WriteSweep(dir string, sc *sim.Scenario, base sim.PolicyInfo, sr *sim.SweepResult) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "sweep.csv"), func(w io.Writer) error { return SweepCSV(w, sr) }); err != nil {
		return err
	}
	if err := paretoPlot(sr, filepath.Join(dir, "pareto")); err != nil {
		return err
	}
	if sr.Recommended >= 0 {
		c := &sr.Cells[sr.Recommended]
		err := writeFile(filepath.Join(dir, "recommended-policy.yaml"), func(w io.Writer) error {
			fmt.Fprintf(w, "# Recommended by: latchsim sweep --scenario %s --seed %d (cell %d: %s)\n", sc.Name, c.Result.Seed, c.Index, strings.Join(c.Sets, " "))
			fmt.Fprintf(w, "# Base policy: %s\n", base)
			_, err := w.Write(policyfile.Marshal(c.Policy))
			return err
		})
		if err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(dir, "sweep.md"), func(w io.Writer) error {
		fmt.Fprintf(w, "# latchsim sweep: %s\n\n%s\n\nBase policy: %s. ", sc.Name, sc.Description, base)
		for _, c := range sr.Cells {
			if c.Result != nil {
				fmt.Fprintf(w, "Seed %d, %s of virtual time per cell.\n\n", c.Result.Seed, c.Result.Duration)
				break
			}
		}
		fmt.Fprintln(w, "![pareto](pareto.svg)\n\n```")
		SweepTable(w, sr)
		fmt.Fprintln(w, "```\n\nEvery cell is in `sweep.csv`; the recommended policy is `recommended-policy.yaml` "+
			"(the Pareto cell nearest the ideal corner, guesses on a log scale).")
		return nil
	})
}

func writeFile(path string, f func(io.Writer) error) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f(out); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return out.Close()
}

func log1p10(x float64) float64 { return math.Log10(1 + x) }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return Int(int64(n)) + " " + what + "s"
}
