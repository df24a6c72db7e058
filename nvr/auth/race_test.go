//go:build race

package auth

// raceEnabled scales property and crash tests down under the race detector,
// which slows SQLite by an order of magnitude.
const raceEnabled = true
