package report

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/latchnvr/latch/sim"
)

var (
	colLatch = color.RGBA{R: 0x2e, G: 0x8b, B: 0x57, A: 0xff}
	colOther = color.RGBA{R: 0x46, G: 0x82, B: 0xb4, A: 0xff}
	colAlert = color.RGBA{R: 0xc0, G: 0x39, B: 0x2b, A: 0xff}
	colGray  = color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff}
)

// logTicks labels an axis that shows log10(1+x) with the powers of ten.
type logTicks struct{}

func (logTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for k := 0; float64(k) <= math.Ceil(max); k++ {
		ts = append(ts, plot.Tick{Value: float64(k), Label: powerLabel(k)})
	}
	return ts
}

// intTicks are the default ticks labelled as plain numbers ("25", not
// "25.00").
type intTicks struct{}

func (intTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'g', -1, 64)
		}
	}
	return ts
}

func powerLabel(k int) string {
	switch {
	case k == 0:
		return "0"
	case k < 3:
		return fmt.Sprint(math.Pow10(k))
	case k < 6:
		return fmt.Sprintf("%gk", math.Pow10(k-3))
	case k < 9:
		return fmt.Sprintf("%gM", math.Pow10(k-6))
	}
	return fmt.Sprintf("1e%d", k)
}

// save draws plots side by side (one row) into base.png and base.svg.
func save(base string, w, h vg.Length, plots ...*plot.Plot) error {
	for _, ext := range []string{"png", "svg"} {
		c, err := draw.NewFormattedCanvas(w, h, ext)
		if err != nil {
			return err
		}
		dc := draw.New(c)
		t := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Millimeter * 6, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
			PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
		canvases := plot.Align([][]*plot.Plot{plots}, t, dc)
		for i, p := range plots {
			p.Draw(canvases[0][i])
		}
		f, err := os.Create(base + "." + ext)
		if err != nil {
			return err
		}
		if _, err := c.WriteTo(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// bars is a panel with one bar per policy, latch's highlighted, each
// labelled with its value.
func bars(title, ylabel string, names []string, vals []float64, labels []string, ticker plot.Ticker, ymax float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	w := vg.Points(18)
	latch := make(plotter.Values, len(vals))
	other := make(plotter.Values, len(vals))
	for i, v := range vals {
		if names[i] == "latch" {
			latch[i] = v
		} else {
			other[i] = v
		}
	}
	for _, s := range []struct {
		v plotter.Values
		c color.Color
	}{{other, colOther}, {latch, colLatch}} {
		b, err := plotter.NewBarChart(s.v, w)
		if err != nil {
			return nil, err
		}
		b.Color = s.c
		b.LineStyle.Width = 0
		p.Add(b)
	}
	xys := make(plotter.XYs, len(vals))
	for i, v := range vals {
		xys[i] = plotter.XY{X: float64(i), Y: v}
	}
	lab, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return nil, err
	}
	for i := range lab.TextStyle {
		lab.TextStyle[i].XAlign = draw.XCenter
		lab.TextStyle[i].Font.Size = vg.Points(8)
	}
	lab.Offset = vg.Point{Y: vg.Points(2)}
	p.Add(lab)
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 4
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.Y.Min = 0
	if ymax > 0 {
		p.Y.Max = ymax
	} else {
		p.Y.Max = math.Max(p.Y.Max*1.15, 1)
	}
	if ticker != nil {
		p.Y.Tick.Marker = ticker
	}
	return p, nil
}

func comparePlot(sc *sim.Scenario, rs []*sim.Result, base string) error {
	names := make([]string, len(rs))
	avail, mins, guesses := make([]float64, len(rs)), make([]float64, len(rs)), make([]float64, len(rs))
	la, lm, lg := make([]string, len(rs)), make([]string, len(rs)), make([]string, len(rs))
	availTitle := "legitimate availability"
	for i, r := range rs {
		m := &r.Metrics
		names[i] = r.Policy.Preset
		avail[i] = m.Legit.Availability
		if m.Victim != nil {
			avail[i] = m.Victim.Availability
			availTitle = "victim (" + m.Victim.User + ") availability"
		}
		la[i] = fmt.Sprintf("%.0f%%", 100*avail[i])
		mins[i] = m.Legit.MinutesPerUserYear
		lm[i] = shortNum(mins[i])
		guesses[i] = log1p10(float64(m.Attack.Guesses))
		lg[i] = shortNum(float64(m.Attack.Guesses))
	}
	p1, err := bars(availTitle, "fraction of legitimate attempts admitted", names, avail, la, nil, 1.12)
	if err != nil {
		return err
	}
	p2, err := bars("legitimate lockout", "minutes locked out per user-year", names, mins, lm, nil, 0)
	if err != nil {
		return err
	}
	p3, err := bars("attacker's verified guesses", "distinct wrong passwords checked (log)", names, guesses, lg, logTicks{}, math.Max(1, math.Ceil(maxOf(guesses)*1.1)))
	if err != nil {
		return err
	}
	p1.Title.Text = sc.Name + ": " + p1.Title.Text
	return save(base, 16*vg.Inch, 5.5*vg.Inch, p1, p2, p3)
}

func maxOf(vs []float64) float64 {
	m := 0.0
	for _, v := range vs {
		m = math.Max(m, v)
	}
	return m
}

func shortNum(f float64) string {
	switch {
	case f >= 1e6:
		return fmt.Sprintf("%.1fM", f/1e6)
	case f >= 1e4:
		return fmt.Sprintf("%.0fk", f/1e3)
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", f), ".0")
}

func dailyPlot(r *sim.Result, base string) error {
	d := r.Metrics.Daily
	mins, refused, guesses := make(plotter.XYs, len(d)), make(plotter.XYs, len(d)), make(plotter.XYs, len(d))
	for i, x := range d {
		mins[i] = plotter.XY{X: float64(x.Day), Y: x.LockoutMinutes}
		refused[i] = plotter.XY{X: float64(x.Day), Y: float64(x.LegitRefused)}
		guesses[i] = plotter.XY{X: float64(x.Day), Y: float64(x.Guesses)}
	}
	p1 := plot.New()
	p1.Title.Text = "legitimate users, per virtual day"
	p1.X.Label.Text = "day"
	p1.X.Tick.Marker = intTicks{}
	l1, err := plotter.NewLine(mins)
	if err != nil {
		return err
	}
	l1.Color = colAlert
	l2, err := plotter.NewLine(refused)
	if err != nil {
		return err
	}
	l2.Color = colOther
	p1.Add(l1, l2)
	p1.Legend.Add("minutes locked out", l1)
	p1.Legend.Add("refused attempts", l2)
	p1.Legend.Top = true
	p1.Y.Min = 0
	p2 := plot.New()
	p2.Title.Text = "attackers, per virtual day"
	p2.X.Label.Text = "day"
	p2.X.Tick.Marker = intTicks{}
	p2.Y.Label.Text = "verified guesses"
	l3, err := plotter.NewLine(guesses)
	if err != nil {
		return err
	}
	l3.Color = colLatch
	p2.Add(l3)
	p2.Y.Min = 0
	return save(base, 12*vg.Inch, 4*vg.Inch, p1, p2)
}

func paretoPlot(sr *sim.SweepResult, base string) error {
	var all, front plotter.XYs
	var frontLabels []string
	var rec plotter.XYs
	for i := range sr.Cells {
		c := &sr.Cells[i]
		if c.Result == nil {
			continue
		}
		xy := plotter.XY{X: log1p10(sim.SweepX(c.Result)), Y: sim.SweepY(c.Result)}
		all = append(all, xy)
		if c.Pareto {
			front = append(front, xy)
			frontLabels = append(frontLabels, strings.Join(c.Values, " "))
		}
		if i == sr.Recommended {
			rec = append(rec, xy)
		}
	}
	if len(all) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = "sweep: attacker's verified guesses vs legitimate lockout (Pareto front)"
	p.X.Label.Text = "verified guesses, all accounts (log)"
	p.Y.Label.Text = "minutes locked out per user-year"
	p.X.Tick.Marker = logTicks{}
	s, err := plotter.NewScatter(all)
	if err != nil {
		return err
	}
	s.GlyphStyle.Color = colGray
	s.GlyphStyle.Radius = vg.Points(2.5)
	p.Add(s)
	idx := make([]int, len(front))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return front[idx[a]].X < front[idx[b]].X })
	sorted := make(plotter.XYs, len(front))
	labels := make([]string, len(front))
	for i, k := range idx {
		sorted[i], labels[i] = front[k], frontLabels[k]
	}
	line, pts, err := plotter.NewLinePoints(sorted)
	if err != nil {
		return err
	}
	line.Color, pts.GlyphStyle.Color = colOther, colOther
	pts.GlyphStyle.Radius = vg.Points(3.5)
	p.Add(line, pts)
	p.Legend.Add("cells", s)
	p.Legend.Add("Pareto front", line, pts)
	if len(sorted) <= 40 {
		lab, err := plotter.NewLabels(plotter.XYLabels{XYs: sorted, Labels: labels})
		if err != nil {
			return err
		}
		for i := range lab.TextStyle {
			lab.TextStyle[i].Font.Size = vg.Points(7)
		}
		lab.Offset = vg.Point{X: vg.Points(4), Y: vg.Points(3)}
		p.Add(lab)
	}
	if len(rec) > 0 {
		r, err := plotter.NewScatter(rec)
		if err != nil {
			return err
		}
		r.GlyphStyle.Color = colAlert
		r.GlyphStyle.Radius = vg.Points(6)
		r.GlyphStyle.Shape = draw.RingGlyph{}
		p.Add(r)
		p.Legend.Add("recommended", r)
	}
	p.Legend.Top = true
	p.Y.Min = 0
	return save(base, 10*vg.Inch, 6*vg.Inch, p)
}
