package proofs

import (
	"testing"

	"github.com/latchnvr/latch/model"
)

// BenchmarkExplore measures the explorer's speed on the latch preset (both
// scopes, admin): states expanded (every step taken and checked) and
// states discovered per second.
func BenchmarkExplore(b *testing.B) {
	p, _ := model.Preset("latch")
	var expanded, states int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := Prove(p, Options{Budget: 20_000, SkipProperties: true})
		for _, run := range r.Runs {
			expanded += run.Expanded
		}
		states += r.States
	}
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(expanded)/s, "expanded/s")
	b.ReportMetric(float64(states)/s, "states/s")
}

// BenchmarkPreset is the full default proof of each preset (explorations,
// P-NODOS and P-BUDGET): what `latch policy prove --preset NAME` costs.
func BenchmarkPreset(b *testing.B) {
	for _, name := range model.PresetNames() {
		b.Run(name, func(b *testing.B) {
			p, _ := model.Preset(name)
			var states int
			for i := 0; i < b.N; i++ {
				r := Prove(p, Options{})
				states += r.States
			}
			b.ReportMetric(float64(states)/float64(b.N), "states/op")
		})
	}
}

// BenchmarkBudget is P-BUDGET alone for each preset.
func BenchmarkBudget(b *testing.B) {
	for _, name := range model.PresetNames() {
		b.Run(name, func(b *testing.B) {
			p, _ := model.Preset(name)
			for i := 0; i < b.N; i++ {
				proveBudget(p, model.RoleAdmin, &Options{Machine: Model{}, BudgetNodes: DefaultBudgetNodes})
			}
		})
	}
}
