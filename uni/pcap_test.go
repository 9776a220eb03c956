package uni

import (
	"encoding/binary"
	"io"
)

// DLT_USER0: Wireshark's user DLT table maps it to the q2931 dissector.
const linkTypeUser0 = 147

// writePcap writes packets as a classic libpcap file (little-endian,
// microsecond timestamps), one second apart.
func writePcap(w io.Writer, packets [][]byte) error {
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4) // magic
	binary.LittleEndian.PutUint16(hdr[4:], 2)          // version 2.4
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535) // snaplen
	binary.LittleEndian.PutUint32(hdr[20:], linkTypeUser0)
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	for i, p := range packets {
		var rec [16]byte
		binary.LittleEndian.PutUint32(rec[0:], uint32(i)) // seconds
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(p)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(p)))
		if _, err := w.Write(rec[:]); err != nil {
			return err
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}
