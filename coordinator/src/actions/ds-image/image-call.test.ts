import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../../common/src/errors.js';
import { aboutImage } from './image-call.js';

async function messageOf(owner: string, agentMessage: string): Promise<StorageError> {
  try {
    await aboutImage(owner, () => Promise.reject(new StorageError('NOT_FOUND', agentMessage)));
  } catch (err) {
    return err as StorageError;
  }
  throw new Error('expected a failure');
}

describe('errors about one image', () => {
  it.each([
    ['image 7', 'delete host01:/x: refused', 'image 7: delete host01:/x: refused'],
    [
      'image 7',
      'cp image 7 from frontend:/a into frontend:/b: MD5 mismatch',
      'cp image 7 from frontend:/a into frontend:/b: MD5 mismatch',
    ],
    ['image 7', 'cp image 70 from frontend:/a: gone', 'image 7: cp image 70 from frontend:/a: gone'],
    ['image 7 (app 3)', 'export of image 7 (app 3): off', 'export of image 7 (app 3): off'],
  ])('%s + %j → %j, reason kept', async (owner, agentMessage, expected) => {
    const e = await messageOf(owner, agentMessage);
    expect(e.message).toBe(expected);
    expect(e.reason).toBe('NOT_FOUND');
  });

  it('lets other errors through unchanged', async () => {
    const boom = new Error('boom');
    await expect(aboutImage('image 7', () => Promise.reject(boom))).rejects.toBe(boom);
  });
});
