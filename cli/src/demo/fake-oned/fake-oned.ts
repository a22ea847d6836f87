// The fake oned: the only fake in the chain (oned itself cannot run here), a stand-in for the demo and
// the tests, not for production (docs/demo.md). It serves oned's own gRPC services with the generated
// code, so the wire format is the real one, and reads its answers from fixture files at every
// request, so a test changes what "oned" says by rewriting a file.
import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerErrorResponse,
  type ServerUnaryCall,
} from '@grpc/grpc-js';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../../common/src/files/atomic-file.js';
import { chownObject, deleteObject, OnedRefusal, userPoolXml, type ObjectKind } from './owned-objects.js';
import { DatastoreServiceService, type DatastoreServiceServer } from '../../../../proto/gen/one/datastore.js';
import { HostServiceService, type HostServiceServer } from '../../../../proto/gen/one/host.js';
import { ImageServiceService, type ImageServiceServer } from '../../../../proto/gen/one/image.js';
import type { ResponseXML } from '../../../../proto/gen/one/shared.js';
import { SystemServiceService, type SystemServiceServer } from '../../../../proto/gen/one/system.js';
import { TemplateServiceService, type TemplateServiceServer } from '../../../../proto/gen/one/template.js';
import { UserServiceService, type UserServiceServer } from '../../../../proto/gen/one/user.js';
import {
  VirtualMachineServiceService,
  type VirtualMachineServiceServer,
} from '../../../../proto/gen/one/vm.js';

export const FAKE_ONED_VERSION = '7.0.0';
const DEFAULT_LISTEN = '127.0.0.1:0';
/** How long close() lets in-flight calls finish before cutting them. */
const SHUTDOWN_GRACE_MS = 2000;

export interface FakeOnedOptions {
  /**
   * Holds vm/<id>.xml, datastore/<id>.xml, image/<id>.xml, host/<id>.xml, user/<id>.xml;
   * allocations go to allocated/ (owned-objects.ts). A file refuse/<oned method> (one.image.allocate,
   * one.template.allocate) makes that call fail with its text, as oned refuses (a full datastore, a
   * quota, a template it cannot parse).
   */
  fixturesDir: string;
  /** host:port to bind; default 127.0.0.1:0 (a free port). */
  listen?: string;
  /** The session_id oned accepts; when set, any other gets UNAUTHENTICATED. */
  session?: string;
}

export interface FakeOnedCall {
  /** Full gRPC service name, e.g. "one.vm.VirtualMachineService". */
  service: string;
  method: string;
  /** The object id (oid), or the datastore id of an image Allocate. */
  id?: number;
}

export interface FakeOned {
  /** host:port to give OnedClient. */
  endpoint: string;
  port: number;
  close(): Promise<void>;
  /** Every request received, in order, including refused ones. */
  calls: FakeOnedCall[];
}

/** What each Info method serves: the fixture folder, and oned's name for the object and the call. */
const INFO_KINDS = {
  vm: { folder: 'vm', noun: 'virtual machine', method: 'one.vm.info' },
  datastore: { folder: 'datastore', noun: 'datastore', method: 'one.datastore.info' },
  image: { folder: 'image', noun: 'image', method: 'one.image.info' },
  host: { folder: 'host', noun: 'host', method: 'one.host.info' },
} as const;
type InfoKind = (typeof INFO_KINDS)[keyof typeof INFO_KINDS];

export async function startFakeOned(opts: FakeOnedOptions): Promise<FakeOned> {
  const calls: FakeOnedCall[] = [];
  const server = new Server();
  const dir = opts.fixturesDir;
  // Allocations run one at a time, as oned's pool hands out ids under a lock: two concurrent calls
  // must not both pick the same next id.
  let allocating: Promise<unknown> = Promise.resolve();
  const allocateSerially = (kind: 'image' | 'template', template: string): Promise<number> => {
    const next = allocating.then(() => allocate(dir, kind, template));
    allocating = next.catch(() => undefined);
    return next;
  };

  /** oned checks the session before anything else and answers with the call's name in brackets. */
  const authenticate = (sessionId: string, onedMethod: string): ServerErrorResponse | undefined =>
    opts.session !== undefined && sessionId !== opts.session
      ? grpcError(status.UNAUTHENTICATED, `[${onedMethod}] User couldn't be authenticated, aborting call.`)
      : undefined;

  const info =
    (service: string, kind: InfoKind) =>
    (
      call: ServerUnaryCall<{ sessionId: string; oid: number }, ResponseXML>,
      done: sendUnaryData<ResponseXML>,
    ): void => {
      const { sessionId, oid } = call.request;
      calls.push({ service, method: 'Info', id: oid });
      const denied = authenticate(sessionId, kind.method);
      if (denied !== undefined) return done(denied);
      readFixture(join(dir, kind.folder, `${oid}.xml`)).then(
        (xml) =>
          done(
            xml === undefined
              ? grpcError(status.NOT_FOUND, `[${kind.method}] Error getting ${kind.noun} [${oid}].`)
              : null,
            xml === undefined ? undefined : { xml },
          ),
        (err: unknown) => done(grpcError(status.INTERNAL, `[${kind.method}] ${String(err)}`)),
      );
    };

  /** Delete and Chown of an allocated image or template (owned-objects.ts). */
  const change =
    <R extends { sessionId: string; oid: number }>(
      service: string,
      method: 'Delete' | 'Chown',
      onedMethod: string,
      apply: (request: R) => Promise<void>,
    ) =>
    (call: ServerUnaryCall<R, { oid: number }>, done: sendUnaryData<{ oid: number }>): void => {
      const { sessionId, oid } = call.request;
      calls.push({ service, method, id: oid });
      const denied = authenticate(sessionId, onedMethod);
      if (denied !== undefined) return done(denied);
      apply(call.request).then(
        () => done(null, { oid }),
        (err: unknown) =>
          done(
            err instanceof OnedRefusal
              ? grpcError(status[err.code], err.message)
              : grpcError(status.INTERNAL, `[${onedMethod}] ${String(err)}`),
          ),
      );
    };
  const deleteOf = (service: string, kind: ObjectKind, onedMethod: string) =>
    change<{ sessionId: string; oid: number }>(service, 'Delete', onedMethod, (r) =>
      deleteObject(dir, kind, r.oid, onedMethod),
    );
  const chownOf = (service: string, kind: ObjectKind, onedMethod: string) =>
    change<{ sessionId: string; oid: number; userId: number; groupId: number }>(
      service,
      'Chown',
      onedMethod,
      (r) => chownObject(dir, kind, r.oid, r.userId, r.groupId, onedMethod),
    );

  const vmService: VirtualMachineServiceServer = {
    info: info('one.vm.VirtualMachineService', INFO_KINDS.vm),
  };
  const datastoreService: DatastoreServiceServer = {
    info: info('one.datastore.DatastoreService', INFO_KINDS.datastore),
  };
  const hostService: HostServiceServer = { info: info('one.host.HostService', INFO_KINDS.host) };
  const imageService: ImageServiceServer = {
    info: info('one.image.ImageService', INFO_KINDS.image),
    delete: deleteOf('one.image.ImageService', 'image', 'one.image.delete'),
    chown: chownOf('one.image.ImageService', 'image', 'one.image.chown'),
    allocate: (call, done) => {
      const { sessionId, template, dsId } = call.request;
      calls.push({ service: 'one.image.ImageService', method: 'Allocate', id: dsId });
      const denied = authenticate(sessionId, 'one.image.allocate');
      if (denied !== undefined) return done(denied);
      if (template.trim() === '') {
        return done(grpcError(status.INVALID_ARGUMENT, '[one.image.allocate] Template is empty.'));
      }
      readFixture(join(dir, 'datastore', `${dsId}.xml`))
        .then(async (ds) => {
          const refused = await readFixture(join(dir, 'refuse', 'one.image.allocate'));
          if (refused !== undefined) return done(grpcError(status.FAILED_PRECONDITION, refused.trim()));
          if (ds === undefined) {
            return done(
              grpcError(status.NOT_FOUND, `[one.image.allocate] Error getting datastore [${dsId}].`),
            );
          }
          done(null, { oid: await allocateSerially('image', template) });
        })
        .catch((err: unknown) => done(grpcError(status.INTERNAL, `[one.image.allocate] ${String(err)}`)));
    },
  };
  const templateService: TemplateServiceServer = {
    delete: deleteOf('one.tmpl.TemplateService', 'template', 'one.template.delete'),
    chown: chownOf('one.tmpl.TemplateService', 'template', 'one.template.chown'),
    allocate: (call, done) => {
      const { sessionId, template } = call.request;
      calls.push({ service: 'one.tmpl.TemplateService', method: 'Allocate' });
      const denied = authenticate(sessionId, 'one.template.allocate');
      if (denied !== undefined) return done(denied);
      if (template.trim() === '') {
        return done(grpcError(status.INVALID_ARGUMENT, '[one.template.allocate] Template is empty.'));
      }
      readFixture(join(dir, 'refuse', 'one.template.allocate'))
        .then((refused) => {
          if (refused !== undefined) throw new OnedRefusal('FAILED_PRECONDITION', refused.trim());
          return allocateSerially('template', template);
        })
        .then(
          (oid) => done(null, { oid }),
          (err: unknown) =>
            done(
              err instanceof OnedRefusal
                ? grpcError(status[err.code], err.message)
                : grpcError(status.INTERNAL, `[one.template.allocate] ${String(err)}`),
            ),
        );
    },
  };
  const userService: UserServiceServer = {
    poolInfo: (call, done) => {
      calls.push({ service: 'one.user.UserService', method: 'PoolInfo' });
      const denied = authenticate(call.request.sessionId, 'one.userpool.info');
      if (denied !== undefined) return done(denied);
      userPoolXml(dir).then(
        (xml) => done(null, { xml }),
        (err: unknown) => done(grpcError(status.INTERNAL, `[one.userpool.info] ${String(err)}`)),
      );
    },
  };
  const systemService: SystemServiceServer = {
    version: (call, done) => {
      calls.push({ service: 'one.system.SystemService', method: 'Version' });
      const denied = authenticate(call.request.sessionId, 'one.system.version');
      if (denied !== undefined) return done(denied);
      done(null, { xml: `<VERSION>${FAKE_ONED_VERSION}</VERSION>` });
    },
  };
  server.addService(VirtualMachineServiceService, vmService);
  server.addService(DatastoreServiceService, datastoreService);
  server.addService(HostServiceService, hostService);
  server.addService(ImageServiceService, imageService);
  server.addService(TemplateServiceService, templateService);
  server.addService(UserServiceService, userService);
  server.addService(SystemServiceService, systemService);

  const listen = opts.listen ?? DEFAULT_LISTEN;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(listen, ServerCredentials.createInsecure(), (err, bound) =>
      err === null ? resolve(bound) : reject(err),
    ),
  );
  const host = listen.slice(0, listen.lastIndexOf(':'));
  return {
    // A UNIX socket (unix:/path) has no port: its address is the listen address itself.
    endpoint: listen.startsWith('unix:') ? listen : `${host}:${port}`,
    port,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

/** The fixture's text, or undefined when the file does not exist (oned's "no such object"). */
async function readFixture(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Stores an allocated template as allocated/<kind>-<id>.tpl and returns the id: one more than any id
 * already used, counting both fixtures and earlier allocations, as oned's pools hand out ids.
 */
async function allocate(dir: string, kind: 'image' | 'template', template: string): Promise<number> {
  const folder = join(dir, 'allocated');
  await mkdir(folder, { recursive: true });
  // A deleted object's id stays used, as oned never hands an id out twice.
  const pattern = new RegExp(`^${kind}-(\\d+)\\.(tpl|deleted)$`);
  const allocated = (await readdir(folder)).map((f) => pattern.exec(f)?.[1]);
  const fixtures = kind === 'image' ? await listIds(join(dir, 'image')) : [];
  const used = [...allocated.filter((id) => id !== undefined).map(Number), ...fixtures];
  const id = used.length === 0 ? 0 : Math.max(...used) + 1;
  const path = join(folder, `${kind}-${id}.tpl`);
  await writeFileAtomic(path, template);
  return id;
}

async function listIds(folder: string): Promise<number[]> {
  const files = await readdir(folder).catch(() => [] as string[]);
  return files
    .map((f) => /^(\d+)\.xml$/.exec(f)?.[1])
    .flatMap((id) => (id === undefined ? [] : [Number(id)]));
}

function grpcError(code: status, details: string): ServerErrorResponse {
  return Object.assign(new Error(details), { code, details });
}
