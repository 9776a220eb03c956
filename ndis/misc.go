package ndis

import (
	"strconv"
	"strings"
)

// CoAssignInstanceName models NdisCoAssignInstanceName: name a VC for
// management tools. A second call returns the existing name; the name lives
// until the VC is deleted (R-VC-13). Miniport call managers have no Binding
// and so cannot call it, as R-VC-13 requires.
func (b *Binding) CoAssignInstanceName(vc *Vc, base string) (string, Status) {
	if b.invalid() {
		return "", StatusFailure
	}
	m := b.m
	const fn = "NdisCoAssignInstanceName"
	if rule, why := m.lockLiveVc(vc); rule != "" {
		return "", m.reject(StatusFailure, rule, fn, b, vc, "%s", why)
	}
	if vc.client() != b && vc.cmB != b {
		vc.mu.Unlock()
		return "", m.reject(StatusFailure, "R-VC-13", fn, b, vc, "not a VC of this protocol")
	}
	// Named under the VC's lock, which its deletion takes to drop the name.
	m.namesMu.Lock()
	name, ok := m.instanceNames[vc]
	if !ok {
		name = "[" + strconv.FormatUint(vc.id, 16) + "] " + base
		if m.instanceNames == nil {
			m.instanceNames = make(map[*Vc]string)
		}
		m.instanceNames[vc] = name
		m.named.Add(1)
	}
	m.namesMu.Unlock()
	vc.mu.Unlock()
	return name, StatusSuccess
}

const tapiPrefix = "condis-vc-"

// CoGetTapiCallId models NdisCoGetTapiCallId: a string identifying the VC,
// which ClGetProtocolVcContextFromTapiCallId maps back. An invalid VC gives
// StatusInvalidData.
func (b *Binding) CoGetTapiCallId(vc *Vc) (string, Status) {
	if b.invalid() {
		return "", StatusFailure
	}
	m := b.m
	const fn = "NdisCoGetTapiCallId"
	if rule, why := m.lockLiveVc(vc); rule != "" {
		return "", m.reject(StatusInvalidData, rule, fn, b, vc, "%s", why)
	}
	vc.mu.Unlock()
	if vc.client() != b && vc.cmB != b {
		return "", m.reject(StatusInvalidData, "R-GEN-8", fn, b, vc, "not a VC of this protocol")
	}
	return tapiPrefix + strconv.FormatUint(vc.id, 10), StatusSuccess
}

// ClGetProtocolVcContextFromTapiCallId models
// NdisClGetProtocolVcContextFromTapiCallId: the client's own context of the
// VC named by a TAPI call ID, or StatusFailure.
func (b *Binding) ClGetProtocolVcContextFromTapiCallId(callID string) (any, Status) {
	if b.invalid() {
		return nil, StatusFailure
	}
	m := b.m
	const fn = "NdisClGetProtocolVcContextFromTapiCallId"
	id, err := strconv.ParseUint(strings.TrimPrefix(callID, tapiPrefix), 10, 64)
	if err == nil && strings.HasPrefix(callID, tapiPrefix) {
		// The client's VCs are listed on its AF opens.
		var ctx any
		found := false
		m.topo.Lock()
		for _, list := range [][]*Af{m.afs.items, m.retired} {
			for _, af := range list {
				if found || af.client != b {
					continue
				}
				af.mu.Lock()
				for v := af.vcList.head; v != nil && !found; v = v.next {
					if v.id == id && v.client() == b {
						v.mu.Lock()
						if v.life == lifeCreated {
							ctx, found = v.clientCtx, true
						}
						v.mu.Unlock()
					}
				}
				af.mu.Unlock()
			}
		}
		m.topo.Unlock()
		if found {
			return ctx, StatusSuccess
		}
	}
	return nil, m.reject(StatusFailure, "R-GEN-8", fn, b, nil, "no VC of this client has TAPI call ID %q", callID)
}
