//go:build race

package proofs

// raceEnabled: the race detector slows the explorer about tenfold, so the
// tests shrink their state budgets (and say so).
const raceEnabled = true
