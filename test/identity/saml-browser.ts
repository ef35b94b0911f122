// The scripted browser lives with the demo, which signs its user in with it; tests use the same one.
export { ScriptedBrowser, parseForm, type HtmlForm, type Page } from '../../src/cli/demo-browser.js';
