// The front door (/): the shell's sign-in form; a signed-in user goes on to ?next= when it names
// one of the pages, else to their role's landing page.

import { LANDING, startPage } from '/static/shell.js';

/** ?next= only ever names a page of this site (/agent, /qa#/calls, …), never another origin. */
function nextPage() {
  const next = new URLSearchParams(location.search).get('next') || '';
  return /^\/(agent|qa|supervisor|admin|operator)(?:[/?#][^\\]*)?$/.test(next) && !next.startsWith('//') ? next : null;
}

startPage({
  page: '',
  roles: Object.keys(LANDING),
  onReady: (me) => { location.replace(nextPage() || LANDING[me.role] || '/'); },
});
