/* global exports */
// electron-builder beforeBuild hook. Returning false tells electron-builder that node_modules
// are handled outside it: it neither rebuilds native modules for Electron nor copies the
// production dependencies into app.asar. The tray app needs none of them: its main process is
// bundled into dist/main/main.js (npm run make) and the agent ships as its own executable.
exports.beforeBuild = async function beforeBuild() {
  return false;
};
