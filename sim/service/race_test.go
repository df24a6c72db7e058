//go:build race

package service

// raceEnabled shortens the agreement runs under the race detector, which
// slows SQLite (modernc's C translated to Go) by an order of magnitude.
const raceEnabled = true
