package quic_test

import (
	"context"
	"fmt"
	"log"

	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/transport/quic"
)

// Two nodes on loopback: beta answers every signalling message alpha sends.
func Example() {
	ca, err := pki.NewCA() // condis cert init, in memory
	if err != nil {
		log.Fatal(err)
	}
	book := &quic.AddrBook{}
	node := func(name string, h transport.Handler) *quic.Endpoint {
		id, err := ca.Issue(name) // condis cert issue
		if err != nil {
			log.Fatal(err)
		}
		ep, err := quic.Listen(quic.Config{Identity: id, Handler: h, Resolve: book.Resolve, ListenAddr: "127.0.0.1:0"})
		if err != nil {
			log.Fatal(err)
		}
		book.Set(name, ep.Addr())
		return ep
	}

	answers := make(chan []byte, 1)
	alpha := node("alpha", transport.HandlerFunc(func(l transport.Link) transport.LinkHandler {
		return &transport.LinkFuncs{OnMessage: func(m []byte) { answers <- m }}
	}))
	defer alpha.Close()
	beta := node("beta", transport.HandlerFunc(func(l transport.Link) transport.LinkHandler {
		fmt.Println("beta: link up from", l.Peer())
		return &transport.LinkFuncs{OnMessage: func(m []byte) {
			m[5] = 0x7d // STATUS ENQUIRY -> STATUS
			l.Send(m)
		}}
	}))
	defer beta.Close()

	link, err := alpha.Dial(context.Background(), "beta")
	if err != nil {
		log.Fatal(err)
	}
	// STATUS ENQUIRY, call reference 1, no information elements.
	link.Send([]byte{0x09, 0x03, 0x00, 0x00, 0x01, 0x75, 0x80, 0x00, 0x00})
	fmt.Printf("alpha: answer type 0x%02x from %s\n", (<-answers)[5], link.Peer())
	// Output:
	// beta: link up from alpha
	// alpha: answer type 0x7d from beta
}
