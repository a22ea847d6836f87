import { credentials, Metadata, status, type CallOptions, type ServiceError } from '@grpc/grpc-js';
import { DatastoreServiceClient } from '../../../proto/gen/one/datastore.js';
import { HostServiceClient } from '../../../proto/gen/one/host.js';
import { ImageServiceClient } from '../../../proto/gen/one/image.js';
import type { ResponseID, ResponseXML } from '../../../proto/gen/one/shared.js';
import { SystemServiceClient } from '../../../proto/gen/one/system.js';
import { TemplateServiceClient } from '../../../proto/gen/one/template.js';
import { UserServiceClient } from '../../../proto/gen/one/user.js';
import { VirtualMachineServiceClient } from '../../../proto/gen/one/vm.js';
import { parseDatastore, type DatastoreInfo } from './datastore-xml.js';
import { parseHost, type HostInfo } from './host-xml.js';
import { parseImage, type ImageInfo } from './image-xml.js';
import { findUser, type UserInfo } from './user-pool-xml.js';
import { OnedError, statusName } from './oned-error.js';
import { parseVm, type VmInfo } from './vm-xml.js';

/** oned.conf GRPC_PORT default (XML-RPC stays on 2633). */
export const ONED_GRPC_DEFAULT_PORT = 2634;
/** oned's object ids are int32 on the wire. */
const MAX_OID = 2 ** 31 - 1;
/** Shown instead of the session if oned ever echoes it back in an error text. */
const REDACTED = '[redacted]';
/** Shorter fragments of the session are not scrubbed: they would mangle ordinary words. */
const MIN_SCRUBBED_SECRET = 4;

export interface OnedClientOptions {
  /** host:port of oned's gRPC API; the port defaults to 2634. */
  endpoint: string;
  /** The ONE_AUTH `user:password` string. A secret: it is never logged nor put in an error. */
  session: string;
  /** Deadline of each call, in milliseconds. */
  deadlineMs: number;
}

type Done<T> = (err: ServiceError | null, response: T) => void;

/**
 * Fetches VM / datastore / image / host XML from oned's gRPC API and allocates images and templates
 * (backup restore). oned's gRPC listener is plaintext on the front-end, hence insecure credentials;
 * all services share one channel.
 */
export class OnedClient {
  readonly endpoint: string;
  private readonly session: string;
  private readonly deadlineMs: number;
  private readonly secrets: readonly string[];
  private readonly vms: VirtualMachineServiceClient;
  private readonly datastores: DatastoreServiceClient;
  private readonly images: ImageServiceClient;
  private readonly templates: TemplateServiceClient;
  private readonly hosts: HostServiceClient;
  private readonly users: UserServiceClient;
  private readonly system: SystemServiceClient;
  private closed = false;

  constructor(options: OnedClientOptions) {
    if (!Number.isInteger(options.deadlineMs) || options.deadlineMs <= 0) {
      throw new Error(`oned client: deadlineMs must be a positive integer, got ${options.deadlineMs}`);
    }
    if (options.session === '') throw new Error('oned client: the session is empty');
    this.endpoint = normaliseEndpoint(options.endpoint);
    this.session = options.session;
    this.deadlineMs = options.deadlineMs;
    const password = options.session.slice(options.session.indexOf(':') + 1);
    this.secrets = [options.session, password].filter((s) => s.length >= MIN_SCRUBBED_SECRET);

    this.vms = new VirtualMachineServiceClient(this.endpoint, credentials.createInsecure());
    const shared = { channelOverride: this.vms.getChannel() };
    this.datastores = new DatastoreServiceClient(this.endpoint, credentials.createInsecure(), shared);
    this.images = new ImageServiceClient(this.endpoint, credentials.createInsecure(), shared);
    this.templates = new TemplateServiceClient(this.endpoint, credentials.createInsecure(), shared);
    this.hosts = new HostServiceClient(this.endpoint, credentials.createInsecure(), shared);
    this.users = new UserServiceClient(this.endpoint, credentials.createInsecure(), shared);
    this.system = new SystemServiceClient(this.endpoint, credentials.createInsecure(), shared);
  }

  /** The <VM> document, with full history records (one.vm.info). */
  async vmXml(id: number): Promise<string> {
    const request = { sessionId: this.session, oid: checkId(id, 'VM'), decrypt: false };
    const reply = await this.call<ResponseXML>(`VM ${id} info`, (o, done) =>
      this.vms.info(request, new Metadata(), o, done),
    );
    return reply.xml;
  }

  async datastoreXml(id: number): Promise<string> {
    const request = { sessionId: this.session, oid: checkId(id, 'datastore'), decrypt: false };
    const reply = await this.call<ResponseXML>(`datastore ${id} info`, (o, done) =>
      this.datastores.info(request, new Metadata(), o, done),
    );
    return reply.xml;
  }

  async imageXml(id: number): Promise<string> {
    const request = { sessionId: this.session, oid: checkId(id, 'image'), decrypt: false };
    const reply = await this.call<ResponseXML>(`image ${id} info`, (o, done) =>
      this.images.info(request, new Metadata(), o, done),
    );
    return reply.xml;
  }

  async hostXml(id: number): Promise<string> {
    const request = { sessionId: this.session, oid: checkId(id, 'host'), decrypt: false };
    const reply = await this.call<ResponseXML>(`host ${id} info`, (o, done) =>
      this.hosts.info(request, new Metadata(), o, done),
    );
    return reply.xml;
  }

  async vm(id: number): Promise<VmInfo> {
    return parseVm(await this.vmXml(id), id);
  }

  async datastore(id: number): Promise<DatastoreInfo> {
    return parseDatastore(await this.datastoreXml(id), id);
  }

  async image(id: number): Promise<ImageInfo> {
    return parseImage(await this.imageXml(id), id);
  }

  async host(id: number): Promise<HostInfo> {
    return parseHost(await this.hostXml(id), id);
  }

  /**
   * Registers an image in datastore `dsId` and returns its id. Not idempotent (each call creates an
   * image), so it is never retried here.
   */
  async allocateImage(template: string, dsId: number): Promise<number> {
    const request = {
      sessionId: this.session,
      template,
      dsId: checkId(dsId, 'datastore'),
      skipCapacityCheck: false,
    };
    const reply = await this.call<ResponseID>(`image allocate in datastore ${dsId}`, (o, done) =>
      this.images.allocate(request, new Metadata(), o, done),
    );
    return reply.oid;
  }

  /** Registers a VM template and returns its id. Not idempotent, like allocateImage. */
  async allocateTemplate(template: string): Promise<number> {
    const request = { sessionId: this.session, template };
    const reply = await this.call<ResponseID>('template allocate', (o, done) =>
      this.templates.allocate(request, new Metadata(), o, done),
    );
    return reply.oid;
  }

  /**
   * Deletes image `id` (backup restore undoing its allocations). `force` deletes it whatever its
   * state, e.g. LOCKED while the datastore's cp runs.
   */
  async deleteImage(id: number, force: boolean): Promise<void> {
    const request = { sessionId: this.session, oid: checkId(id, 'image'), force };
    await this.call<ResponseID>(`image ${id} delete`, (o, done) =>
      this.images.delete(request, new Metadata(), o, done),
    );
  }

  /** Deletes VM template `id`, never the images its disks name (not recursive). */
  async deleteTemplate(id: number): Promise<void> {
    const request = { sessionId: this.session, oid: checkId(id, 'template'), recursive: false };
    await this.call<ResponseID>(`template ${id} delete`, (o, done) =>
      this.templates.delete(request, new Metadata(), o, done),
    );
  }

  /** Gives image `id` to user `uid` and group `gid` (one.image.chown). A repeat changes nothing. */
  async chownImage(id: number, uid: number, gid: number): Promise<void> {
    const request = { sessionId: this.session, oid: checkId(id, 'image'), userId: uid, groupId: gid };
    await this.call<ResponseID>(`image ${id} chown to ${uid}:${gid}`, (o, done) =>
      this.images.chown(request, new Metadata(), o, done),
    );
  }

  /** Gives VM template `id` to user `uid` and group `gid` (one.template.chown). */
  async chownTemplate(id: number, uid: number, gid: number): Promise<void> {
    const request = { sessionId: this.session, oid: checkId(id, 'template'), userId: uid, groupId: gid };
    await this.call<ResponseID>(`template ${id} chown to ${uid}:${gid}`, (o, done) =>
      this.templates.chown(request, new Metadata(), o, done),
    );
  }

  /** The user called `name` (one.userpool.info), or undefined when oned has none. */
  async userByName(name: string): Promise<UserInfo | undefined> {
    const request = { sessionId: this.session };
    const reply = await this.call<ResponseXML>('user pool info', (o, done) =>
      this.users.poolInfo(request, new Metadata(), o, done),
    );
    return findUser(reply.xml, name);
  }

  /** oned's version document: a cheap check of the endpoint and the session at startup. */
  async version(): Promise<string> {
    const request = { sessionId: this.session };
    const reply = await this.call<ResponseXML>('version', (o, done) =>
      this.system.version(request, new Metadata(), o, done),
    );
    return reply.xml;
  }

  /** Closes the shared channel; later calls fail at once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.vms.close();
  }

  private call<T>(what: string, invoke: (options: Partial<CallOptions>, done: Done<T>) => void): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`oned: ${what} failed: the oned client is closed`));
    return new Promise<T>((resolve, reject) => {
      invoke({ deadline: Date.now() + this.deadlineMs }, (err, response) => {
        if (err === null) resolve(response);
        else reject(this.toError(what, err));
      });
    });
  }

  private toError(what: string, err: ServiceError): OnedError {
    const details = oneLine(this.scrub(err.details || err.message));
    const name = statusName(err.code);
    switch (err.code) {
      case status.UNAVAILABLE:
        return new OnedError(`oned unreachable at ${this.endpoint} (${name})`, err.code, details);
      case status.DEADLINE_EXCEEDED:
        return new OnedError(
          `oned: ${what} timed out after ${this.deadlineMs} ms at ${this.endpoint} (${name})`,
          err.code,
          details,
        );
      default:
        return new OnedError(`oned: ${what} failed: ${name}: ${details}`, err.code, details);
    }
  }

  private scrub(text: string): string {
    return this.secrets.reduce((out, secret) => out.split(secret).join(REDACTED), text);
  }
}

/** Adds oned's default gRPC port when the endpoint names only a host ("fe", "10.0.0.1", "[::1]"). */
export function normaliseEndpoint(endpoint: string): string {
  const trimmed = endpoint.trim();
  if (trimmed === '' || /\s|\//.test(trimmed)) {
    throw new Error(`oned endpoint must be host or host:port, got ${JSON.stringify(endpoint)}`);
  }
  if (trimmed.startsWith('[')) {
    return trimmed.includes(']:') ? trimmed : `${trimmed}:${ONED_GRPC_DEFAULT_PORT}`;
  }
  const colons = trimmed.split(':').length - 1;
  if (colons === 0) return `${trimmed}:${ONED_GRPC_DEFAULT_PORT}`;
  // A bare IPv6 address has several colons and no port.
  if (colons > 1) return `[${trimmed}]:${ONED_GRPC_DEFAULT_PORT}`;
  return trimmed;
}

function checkId(id: number, what: string): number {
  if (!Number.isInteger(id) || id < 0 || id > MAX_OID) throw new Error(`oned: invalid ${what} id ${id}`);
  return id;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
