// Package racedetect says whether the race detector is built in. Tests
// that count allocations need it: under the race detector sync.Pool drops
// some of what is put back on purpose, so pooled objects are allocated
// again and counts are not exact.
package racedetect
