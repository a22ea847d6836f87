import { describe, expect, it } from 'vitest';
import { redactUrlSecrets, shownUrl } from './shown-url.js';

const TOKEN = 'A'.repeat(20) + '-_' + 'z'.repeat(21);

describe('shownUrl', () => {
  it.each([
    ['http://127.0.0.1:8080/a.img', 'http://127.0.0.1:8080/a.img'],
    ['https://user:secret@mirror.test/a.img?x=1', 'https://mirror.test/a.img?x=1'],
    ['https://user@mirror.test/a.img', 'https://mirror.test/a.img'],
    ['https://:secret@mirror.test/a.img', 'https://mirror.test/a.img'],
    ['http://u:p%40ss@mirror.test/a', 'http://mirror.test/a'],
    [
      `https://10.0.0.2:8443/export/${TOKEN}/image-3.qcow2`,
      'https://10.0.0.2:8443/export/[redacted]/image-3.qcow2',
    ],
  ])('%s is shown as %s', (url, shown) => {
    expect(shownUrl(new URL(url))).toBe(shown);
  });

  it('leaves the URL it is given unchanged', () => {
    const url = new URL('https://user:secret@mirror.test/a.img');
    shownUrl(url);
    expect(url.password).toBe('secret');
  });
});

describe('redactUrlSecrets', () => {
  it.each([
    ['cp image 7 from http://user:secret@h/a into x', 'cp image 7 from http://h/a into x'],
    ['two: https://a:b@h1/x and HTTP://c@h2:80?q', 'two: https://h1/x and HTTP://h2:80?q'],
    // WHATWG takes the authority's last @: nothing of the password is left.
    ['http://u:p@ss@host/x', 'http://host/x'],
    ['url "ftp://u:secret@host" is not a URL', 'url "ftp://host" is not a URL'],
    [
      '{"source":"http://u:secret@h/a","by":"ops@example.test"}',
      '{"source":"http://h/a","by":"ops@example.test"}',
    ],
    [`GET https://h/export/${TOKEN}`, 'GET https://h/export/[redacted]'],
  ])('%s', (text, redacted) => {
    expect(redactUrlSecrets(text)).toBe(redacted);
  });

  it('leaves text without a URL alone, e-mail addresses included', () => {
    const text = 'image 7 on host01: owner ops@example.test, see /var/lib/one@x';
    expect(redactUrlSecrets(text)).toBe(text);
  });
});
