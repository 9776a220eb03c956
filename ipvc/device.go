package ipvc

// Device is the TUN interface as an [Interface] uses it: batches of IP
// packets (no link-layer header) in and out. [Open] makes the Linux one
// (golang.zx2c4.com/wireguard/tun); tests use an in-memory twin.
//
// Concurrency: one goroutine reads; any number write at once.
type Device interface {
	// Read reads up to len(bufs) packets, each into bufs[i][offset:], and
	// sets sizes[i]; it returns how many. It blocks until at least one
	// packet is there or the device is closed.
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	// Write writes each of bufs[i][offset:] as one packet. offset leaves
	// room in front for what the device needs (WriteOffset).
	Write(bufs [][]byte, offset int) (int, error)
	// BatchSize is the most packets one Read returns.
	BatchSize() int
	// SetMTU changes the interface's MTU.
	SetMTU(mtu int) error
	// Close removes the interface; a blocked Read returns an error.
	Close() error
}

// offset is the room left in front of every packet buffer: what the Linux
// TUN device's virtio-net header needs (10 octets), rounded up.
const offset = 16
