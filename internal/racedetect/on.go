//go:build race

package racedetect

// Enabled reports whether the race detector is built in.
const Enabled = true
