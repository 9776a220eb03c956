package mcm

import (
	"testing"
	"unsafe"
)

// TestVcSize fails if the MCM's per-VC record grows out of its 224-octet
// size class: a node holds one per held call, and makes one per call.
// Its call record's flowspecs are shared between VCs (callctl.Flows) for
// that reason.
func TestVcSize(t *testing.T) {
	if s := unsafe.Sizeof(vc{}); s > 224 {
		t.Errorf("unsafe.Sizeof(vc{}) = %d octets; it must stay within the 224-octet size class", s)
	}
}
