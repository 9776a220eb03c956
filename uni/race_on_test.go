//go:build race

package uni

// raceEnabled: the race detector is on, and sync.Pool drops some of what
// is put back on purpose, so allocation counts are not exact.
const raceEnabled = true
