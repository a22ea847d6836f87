/**
 * What a restored VM template leaves out of the old VM's attributes (docs/backups.md#the-vm-template):
 * the same names OpenNebula's rsync driver strips, so a template restored through either driver
 * reads alike. oned fills every one of them in again when the new VM is instantiated.
 */

/** An attribute name, or a pattern for a family of names (ETH0_IP, PCI1_ADDRESS, ...). */
export type AttrMatcher = string | RegExp;

/** DISK: the old image's placement and state, which the new image replaces. */
const DISK = [
  'ALLOW_ORPHANS',
  'CLONE',
  'CLONE_TARGET',
  'CLUSTER_ID',
  'DATASTORE',
  'DATASTORE_ID',
  'DISK_SNAPSHOT_TOTAL_SIZE',
  'DISK_TYPE',
  'DRIVER',
  'FORMAT',
  'IMAGE',
  'IMAGE_STATE',
  'IMAGE_UID',
  'IMAGE_UNAME',
  'LN_TARGET',
  'OPENNEBULA_MANAGED',
  'ORIGINAL_SIZE',
  'PERSISTENT',
  'READONLY',
  'SAVE',
  'SOURCE',
  'TARGET',
  'TM_MAD',
] as const;

/** NIC (and NIC_ALIAS): the old lease's network placement. */
const NIC = [
  'AR_ID',
  'BRIDGE',
  'BRIDGE_TYPE',
  'CLUSTER_ID',
  'NAME',
  'NETWORK_ID',
  'NIC_ID',
  'PHYDEV',
  'TARGET',
  'VLAN_ID',
  'VLAN_TAGGED_ID',
  'VN_MAD',
] as const;

/** NO_IP=YES: the addresses go too. */
const NIC_ADDRESSES = ['IP', 'IP6', 'IP6_ULA', 'IP6_GLOBAL', 'MAC'] as const;

/** PCI: the host device and the guest slot it had. */
const PCI = [
  ...NIC,
  'ADDRESS',
  'BUS',
  'DOMAIN',
  'FUNCTION',
  'NUMA_NODE',
  'PCI_ID',
  'SHORT_ADDRESS',
  'SLOT',
  'VM_ADDRESS',
  'VM_BUS',
  'VM_DOMAIN',
  'VM_FUNCTION',
  'VM_SLOT',
] as const;

/**
 * The VM's own top-level attributes. oned adds them at instantiation (requirements, the ids,
 * the system TM, the security group rules expanded from the NICs, the last error).
 */
const VM = [
  'AUTOMATIC_DS_REQUIREMENTS',
  'AUTOMATIC_NIC_REQUIREMENTS',
  'AUTOMATIC_REQUIREMENTS',
  'ERROR',
  'SECURITY_GROUP_RULE',
  'TEMPLATE_ID',
  'TM_MAD_SYSTEM',
  'VMID',
] as const;

/**
 * CONTEXT: the context disk's id and the per-NIC and per-PCI variables oned generates from the
 * NICs (ETH0_IP, ETH1_MAC, PCI0_ADDRESS, ...). rsync's pattern matches "ETH" or "PCI" anywhere in a
 * name (it would also drop a user's METHOD); these match only the generated names.
 */
const CONTEXT: readonly AttrMatcher[] = ['DISK_ID', /^ETH\d*(_|$)/, /^PCI\d*(_|$)/];

export interface AttributeLists {
  disk: readonly AttrMatcher[];
  nic: readonly AttrMatcher[];
  pci: readonly AttrMatcher[];
  vm: readonly AttrMatcher[];
  context: readonly AttrMatcher[];
  graphics: readonly AttrMatcher[];
  numaNode: readonly AttrMatcher[];
  os: readonly AttrMatcher[];
}

/** The lists for one restore (NO_IP adds the addresses to the NIC list). */
export function attributeLists(noIp: boolean): AttributeLists {
  return {
    disk: DISK,
    nic: noIp ? [...NIC, ...NIC_ADDRESSES] : NIC,
    pci: PCI,
    vm: VM,
    context: CONTEXT,
    graphics: ['PORT'],
    numaNode: ['CPUS', 'MEMORY_NODE_ID', 'NODE_ID'],
    os: ['UUID'],
  };
}

/**
 * A NIC asks for one address only: with an IP it keeps no MAC or IPv6 address, with only an IPv6
 * address it keeps no MAC (oned derives the rest from the lease).
 */
export function stripNicAddresses(nic: Map<string, string>): void {
  if (nic.has('IP')) {
    for (const k of ['MAC', 'IP6', 'IP6_ULA', 'IP6_GLOBAL']) nic.delete(k);
  } else if (nic.has('IP6')) {
    nic.delete('MAC');
  }
}
