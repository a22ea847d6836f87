// The fake oned, run from an installed one-storage package on the fleet's front-end (the fleet test
// copies this file there and starts it with systemd-run): oned itself is not installed in the
// containers. Runs until SIGTERM (systemctl stop).
// usage: node fleet-fake-oned.mjs INSTALL_DIR FIXTURES_DIR LISTEN SESSION
const [installDir, fixturesDir, listen, session] = process.argv.slice(2);
if (!installDir || !fixturesDir || !listen || !session) {
  console.error('usage: node fleet-fake-oned.mjs INSTALL_DIR FIXTURES_DIR LISTEN SESSION');
  process.exit(2);
}
const { startFakeOned } = await import(`${installDir}/dist/cli/src/demo/fake-oned/fake-oned.js`);
const oned = await startFakeOned({ fixturesDir, listen, session });
console.log(`fake oned from ${installDir} listening on ${oned.endpoint}, fixtures in ${fixturesDir}`);
process.once('SIGTERM', () => {
  oned.close().then(() => process.exit(0));
});
