package metrics_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// These helpers do what client_golang's testutil.GatherAndCompare,
// ScrapeAndCompare and ToFloat64 do. testutil itself imports
// github.com/kylelemons/godebug, which go.mod does not list, and go.mod is
// not this package's to change.

// gatherAndCompare gathers g and compares the families named (all when none
// are) with expected, in the text exposition format.
func gatherAndCompare(t *testing.T, g prometheus.Gatherer, expected string, names ...string) {
	t.Helper()
	got, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	compareFamilies(t, got, parseText(t, expected), names)
}

// scrapeAndCompare GETs url (the real handler over HTTP) and compares as
// gatherAndCompare does.
func scrapeAndCompare(t *testing.T, url, expected string, names ...string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: HTTP %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: parse: %v", err)
	}
	compareFamilies(t, values(fams), parseText(t, expected), names)
}

func parseText(t *testing.T, text string) []*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("expected text: %v", err)
	}
	return values(fams)
}

func values(m map[string]*dto.MetricFamily) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, mf := range m {
		out = append(out, mf)
	}
	return out
}

func compareFamilies(t *testing.T, got, want []*dto.MetricFamily, names []string) {
	t.Helper()
	g, w := encodeLines(t, got, names), encodeLines(t, want, names)
	if !slices.Equal(g, w) {
		t.Fatalf("metrics differ\n--- got\n%s\n--- want\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}

// encodeLines renders the selected families in the text format, one sorted
// line per HELP, TYPE and sample line, so order does not matter.
func encodeLines(t *testing.T, fams []*dto.MetricFamily, names []string) []string {
	t.Helper()
	var b strings.Builder
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain).WithEscapingScheme(model.NoEscaping))
	for _, mf := range fams {
		if len(names) > 0 && !slices.Contains(names, mf.GetName()) {
			continue
		}
		if err := enc.Encode(mf); err != nil {
			t.Fatalf("encode %s: %v", mf.GetName(), err)
		}
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	slices.Sort(lines)
	return lines
}

// value returns the value of one counter or gauge series of m, 0 when the
// series does not exist. labels are the label values in label-name order.
func value(t *testing.T, m interface{ Registry() *prometheus.Registry }, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			if len(s.GetLabel()) != len(labels) {
				continue
			}
			for i, l := range s.GetLabel() {
				if l.GetValue() != labels[i] {
					continue series
				}
			}
			if s.GetCounter() != nil {
				return s.GetCounter().GetValue()
			}
			return s.GetGauge().GetValue()
		}
	}
	return 0
}
