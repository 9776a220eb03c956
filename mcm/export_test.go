package mcm

// IllegalMoves is how many VC transitions callctl.State does not draw d
// made: the tests' worlds fail on any.
func IllegalMoves(d *MCM) uint64 { return d.illegalMoves.Load() }
