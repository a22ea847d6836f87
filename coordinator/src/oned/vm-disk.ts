import { intValue, yesNoValue } from './xml-element.js';

/**
 * One /VM/TEMPLATE/DISK. `attrs` holds every child element as oned wrote it; the getters convert the
 * attributes the drivers read (docs/opennebula/driver-inputs.md#fields-the-tm-scripts-read) and throw, naming VM, disk and attribute, when oned's
 * text does not fit. They convert on access so that an odd value in an attribute one action never
 * reads cannot fail that action.
 */
export class VmDisk {
  constructor(
    readonly vmId: number,
    readonly diskId: number,
    readonly attrs: Readonly<Record<string, string>>,
  ) {}

  /** Any attribute by its oned name; undefined when the DISK does not carry it. */
  get(name: string): string | undefined {
    return this.attrs[name];
  }

  /** SIZE in MiB. */
  get size(): number | undefined {
    return this.int('SIZE');
  }
  /** ORIGINAL_SIZE in MiB: the image size before a resize at instantiation. */
  get originalSize(): number | undefined {
    return this.int('ORIGINAL_SIZE');
  }
  /** SPARSE (inherited from the datastore); undefined means the driver default (sparse). */
  get sparse(): boolean | undefined {
    return this.yesNo('SPARSE');
  }
  get format(): string | undefined {
    return this.attrs['FORMAT'];
  }
  get source(): string | undefined {
    return this.attrs['SOURCE'];
  }
  /** CLONE=YES for a non-persistent image disk (the VM gets its own copy). */
  get clone(): boolean | undefined {
    return this.yesNo('CLONE');
  }
  get tmMad(): string | undefined {
    return this.attrs['TM_MAD'];
  }
  /** Set only in mixed mode; then transfer actions carry the `.<TM_MAD_SYSTEM>` suffix. */
  get tmMadSystem(): string | undefined {
    return this.attrs['TM_MAD_SYSTEM'];
  }
  /** FILE, CDROM, BLOCK, ... for image disks; swap or fs for volatile disks (oned keeps the case). */
  get type(): string | undefined {
    return this.attrs['TYPE'];
  }
  get target(): string | undefined {
    return this.attrs['TARGET'];
  }
  get datastoreId(): number | undefined {
    return this.int('DATASTORE_ID');
  }
  get imageId(): number | undefined {
    return this.int('IMAGE_ID');
  }
  /** SAVE=YES: the disk goes back to its image on epilog (persistent images). */
  get save(): boolean | undefined {
    return this.yesNo('SAVE');
  }
  get persistent(): boolean | undefined {
    return this.yesNo('PERSISTENT');
  }
  get qcow2Standalone(): boolean | undefined {
    return this.yesNo('QCOW2_STANDALONE');
  }

  /** A volatile disk (swap / fs) has no image: it lives only in the system datastore. */
  get isVolatile(): boolean {
    return this.attrs['IMAGE_ID'] === undefined;
  }

  private int(name: string): number | undefined {
    return intValue(this.attrs[name], this.describe(name));
  }

  private yesNo(name: string): boolean | undefined {
    return yesNoValue(this.attrs[name], this.describe(name));
  }

  private describe(name: string): string {
    return `VM ${this.vmId} DISK ${this.diskId} ${name}`;
  }
}
