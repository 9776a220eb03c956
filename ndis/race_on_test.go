//go:build race

package ndis_test

// raceEnabled: the race detector is on. Its sync.Pool drops a quarter of
// what is put back, at random, so pooled records are allocated again.
const raceEnabled = true
