package mcm

import "github.com/condis-project/condis/uni"

// Timers: each peer's association runs its uni timers on one runtime
// timer (callctl.TimerQueue); an expiry comes here with d.mu held.

// timerExpiredLocked applies the Output of one of p's uni timers running
// out. The timer's goroutine holds d.mu, so it cannot send or run the
// work the Output queued: kickLocked starts a goroutine that does.
func (d *MCM) timerExpiredLocked(p *peer, out uni.Output) {
	d.core.ApplyLocked(p.as, out)
	d.core.KickLocked()
}
