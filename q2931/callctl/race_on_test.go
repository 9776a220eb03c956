//go:build race

package callctl

// raceEnabled: the race detector is on, which changes allocations.
const raceEnabled = true
