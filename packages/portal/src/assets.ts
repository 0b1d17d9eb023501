// The stylesheet and the progressive-enhancement script, served as static assets (the CSP
// allows no inline script or style). Without the script every page still works.

export const CSS = `
:root{--bg:#f6f7f9;--card:#fff;--text:#1c2430;--muted:#5d6877;--line:#e2e6eb;--accent:#2856d8;--accent-dark:#1d41a8;--danger:#c2362b;--ok:#1b7f4b;--warn:#a45f00;--focus:#ffbf47;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--text);background:var(--bg)}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;line-height:1.5}
a{color:var(--accent)}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5rem 1rem;z-index:2}
.skip:focus{left:1rem}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.wrap{max-width:1180px;margin:0 auto;padding:0 1.25rem}
.top{background:#111827;color:#fff}
.top .wrap{display:flex;align-items:center;justify-content:space-between;height:3.5rem}
.brand{font-weight:650;letter-spacing:.01em}
.top nav a{color:#d1d5db;text-decoration:none;margin-left:1.25rem;padding:.25rem 0}
.top nav a[aria-current=page]{color:#fff;border-bottom:2px solid #fff}
main{padding:1.5rem 1.25rem 3rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}
h2{font-size:1.15rem;margin:0 0 .75rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:1.25rem 1.5rem;margin-bottom:1.25rem;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.lead{color:var(--muted);margin-top:-.5rem}
.field{margin:0 0 1rem;border:0;padding:0}
.field>label,legend{display:block;font-weight:600;margin-bottom:.35rem}
input[type=text],input[type=number],select{font:inherit;width:100%;max-width:28rem;padding:.5rem .65rem;border:1px solid #c5ccd6;border-radius:6px;background:#fff;color:inherit}
input[readonly]{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;background:#f3f5f8}
.inline{display:flex;gap:.5rem;max-width:28rem}
.inline input{flex:1 1 8rem;min-width:0}
.inline select{flex:0 1 11rem}
.choices{display:flex;gap:.75rem;flex-wrap:wrap}
.choice{display:flex;gap:.6rem;align-items:flex-start;border:1px solid var(--line);border-radius:8px;padding:.65rem .9rem;min-width:15rem;cursor:pointer}
.choice:has(input:checked){border-color:var(--accent);background:#f2f5fe}
.choice small{display:block;color:var(--muted)}
.hint{color:var(--muted);font-size:.9rem;margin:.3rem 0 0}
.error{color:var(--danger);font-weight:600;font-size:.92rem;margin:.3rem 0 0}
.invalid input,.invalid select{border-color:var(--danger)}
.btn{display:inline-block;font:inherit;font-size:.95rem;padding:.5rem 1rem;border-radius:6px;border:1px solid #c5ccd6;background:#fff;color:var(--text);text-decoration:none;cursor:pointer;line-height:1.3}
.btn:hover{background:#f3f5f8}
.btn.primary{background:var(--accent);border-color:var(--accent);color:#fff}
.btn.primary:hover{background:var(--accent-dark)}
.btn.danger{color:var(--danger);border-color:#e6b4af}
.btn.danger.solid{background:var(--danger);color:#fff;border-color:var(--danger)}
.btn.small{padding:.25rem .6rem;font-size:.85rem}
.actions{white-space:nowrap}
.actions .btn+.btn{margin-left:.35rem}
@media (max-width:1400px){.actions .btn{display:block;text-align:center}.actions .btn+.btn{margin:.35rem 0 0}}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{text-align:left;padding:.6rem .5rem;border-bottom:1px solid var(--line);vertical-align:middle}
thead th{font-size:.78rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);background:#fafbfc}
td.nowrap,td code{white-space:nowrap}
tbody th{font-weight:600}
tr[data-status=revoked] th,tr[data-status=revoked] td,tr[data-status=expired] th,tr[data-status=expired] td{color:var(--muted)}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.88em;background:#f1f3f6;padding:.1rem .3rem;border-radius:4px}
pre{background:#111827;color:#e5e7eb;padding:.9rem 1rem;border-radius:8px;overflow-x:auto}
pre code{background:none;color:inherit;padding:0}
.badge{display:inline-block;font-size:.75rem;font-weight:650;padding:.12rem .5rem;border-radius:999px;white-space:nowrap}
.badge-active{background:#e3f5ea;color:var(--ok)}
.badge-expiring{background:#fff2dc;color:var(--warn)}
.badge-expired{background:#eceef1;color:#4b5563}
.badge-revoked{background:#fde8e6;color:var(--danger)}
.badge-due{background:#fff2dc;color:var(--warn);margin-left:.25rem}
.spark{color:var(--accent);display:block}
.limit{display:block;white-space:nowrap}
.limit-edit{font-size:.85rem}
.muted{color:var(--muted)}
.notice{background:#e3f5ea;border:1px solid #b7e2c7;border-radius:8px;padding:.65rem 1rem;margin-bottom:1rem}
.warning{background:#fff6e5;border:1px solid #f3d29b;border-radius:8px;padding:.75rem 1rem}
.alert{background:#fde8e6;border:1px solid #f2bcb6;border-radius:8px;padding:.75rem 1rem}
.copy-row{display:flex;gap:.5rem;max-width:46rem}
.copy-row input{max-width:none;flex:1}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1.25rem;margin:1rem 0}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0}
.empty{color:var(--muted);padding:1rem 0}
@media (max-width:640px){.choice{min-width:0;width:100%}}
`;

export const SCRIPT = `'use strict';
(function () {
  var token = document.querySelector('meta[name="portal-token"]');

  // Key level: the project dropdown only for a project-level key (without JS it always shows).
  var form = document.querySelector('form[data-create]');
  if (form) {
    var field = form.querySelector('[data-project-field]');
    var select = field && field.querySelector('select');
    var sync = function () {
      var checked = form.querySelector('input[name="level"]:checked');
      var project = !!checked && checked.value === 'project';
      if (field) field.hidden = !project;
      if (select) select.required = project;
    };
    form.addEventListener('change', function (event) {
      if (event.target && event.target.name === 'level') sync();
    });
    sync();
  }

  // Copy buttons (hidden without JS).
  var status = document.querySelector('[data-copy-status]');
  var say = function (text) { if (status) status.textContent = text; };
  Array.prototype.forEach.call(document.querySelectorAll('button[data-copy]'), function (button) {
    var input = document.getElementById(button.getAttribute('data-copy'));
    if (!input) return;
    button.hidden = false;
    button.addEventListener('click', function () {
      var fallback = function () { input.focus(); input.select(); say('Press Ctrl+C (or Cmd+C) to copy the selected key.'); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(input.value).then(function () { button.textContent = 'Copied'; say('Copied to the clipboard.'); }, fallback);
      } else fallback();
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll('input[data-select-on-focus]'), function (input) {
    input.addEventListener('focus', function () { input.select(); });
  });

  // Revoke: a confirm() instead of the confirmation page.
  document.addEventListener('click', function (event) {
    var link = event.target && event.target.closest ? event.target.closest('a[data-confirm]') : null;
    if (!link || !token || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    if (!window.confirm(link.getAttribute('data-confirm'))) return;
    var post = document.createElement('form');
    post.method = 'post';
    post.action = link.href;
    var input = document.createElement('input');
    input.type = 'hidden';
    input.name = '_token';
    input.value = token.getAttribute('content');
    post.appendChild(input);
    document.body.appendChild(post);
    post.submit();
  });
})();
`;
