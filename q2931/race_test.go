//go:build race

package q2931_test

// raceEnabled: the race detector is on.
const raceEnabled = true
