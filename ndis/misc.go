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
	m.mu.Lock()
	if rule, why := m.liveVcCheckLocked(vc); rule != "" {
		return "", m.refuse(StatusFailure, rule, fn, b, vc, "%s", why)
	}
	if vc.client != b && vc.cmB != b {
		return "", m.refuse(StatusFailure, "R-VC-13", fn, b, vc, "not a VC of this protocol")
	}
	name, ok := m.instanceNames[vc]
	if !ok {
		name = "[" + strconv.FormatUint(vc.id, 16) + "] " + base
		if m.instanceNames == nil {
			m.instanceNames = make(map[*Vc]string)
		}
		m.instanceNames[vc] = name
	}
	m.mu.Unlock()
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
	m.mu.Lock()
	if rule, why := m.liveVcCheckLocked(vc); rule != "" {
		return "", m.refuse(StatusInvalidData, rule, fn, b, vc, "%s", why)
	}
	if vc.client != b && vc.cmB != b {
		return "", m.refuse(StatusInvalidData, "R-GEN-8", fn, b, vc, "not a VC of this protocol")
	}
	id := tapiPrefix + strconv.FormatUint(vc.id, 10)
	m.mu.Unlock()
	return id, StatusSuccess
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
	m.mu.Lock()
	if err == nil && strings.HasPrefix(callID, tapiPrefix) {
		for v := m.vcs.head; v != nil; v = v.next {
			if v.id == id && v.client == b && v.life == lifeCreated {
				ctx := v.clientCtx
				m.mu.Unlock()
				return ctx, StatusSuccess
			}
		}
	}
	return nil, m.refuse(StatusFailure, "R-GEN-8", fn, b, nil, "no VC of this client has TAPI call ID %q", callID)
}
