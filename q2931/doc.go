// Package q2931 is the one definition of condis's Q.2931 address family
// (CO_ADDRESS_FAMILY_Q2931, UNI 3.1) as CoNDIS clients and call managers
// see it, and of the mapping between that family and the signalling of
// package uni:
//
//   - the address family itself (AF) and the AF-specific blobs of CoNDIS
//     structures: a destination "node/service" in CallMgrSpecific
//     (CallParams, Destination), the calling node of an offered call
//     (CallingNode), the connection identifier and reliability flag in
//     MediaSpecific (Media);
//   - SAPs: an ATM End System Address or the wildcard, plus a BHLI whose
//     user-specific information is the service name (ServiceSap, ParseSap,
//     SapService);
//   - ATM End System Addresses of nodes (Prefix, ESI, Address);
//   - flowspecs <-> the UNI 3.1 traffic IEs (CheckFlowspec, TrafficDescriptor,
//     NewSetup, ReadSetup, ModifiedFlowspecs, AALParams);
//   - Q.2931 causes <-> NDIS statuses, in one table (StatusForCause,
//     CauseForStatus, IndicationStatus).
//
// Every call manager of the repository (mcm, the in-memory drivers of
// memdrv) and every client (node's control plane, the CLI) uses these
// encodings, so parameters built for one work with all. The package is
// pure: no I/O, no state but constant tables. It imports ndis and uni;
// uni does not import ndis.
package q2931
