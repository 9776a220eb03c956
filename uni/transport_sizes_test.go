package uni_test

import (
	"testing"

	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/uni"
)

// TestMessageSizesMatchTransport: the transport carries exactly the
// messages the codec makes. The transport states its limits without
// importing uni (it is the lower layer); this keeps the two in step.
func TestMessageSizesMatchTransport(t *testing.T) {
	if uni.HeaderLen != transport.MinMessageLen {
		t.Errorf("uni.HeaderLen %d, transport.MinMessageLen %d", uni.HeaderLen, transport.MinMessageLen)
	}
	if uni.MaxMessageLen != transport.MaxMessageLen {
		t.Errorf("uni.MaxMessageLen %d, transport.MaxMessageLen %d", uni.MaxMessageLen, transport.MaxMessageLen)
	}
}
