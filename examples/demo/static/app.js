// The notes page's live updates: a WebSocket to /ws/notes prepends every new
// note to #notes, so other people's notes appear without a reload. The form
// itself is a plain POST that redirects back to / (it works without
// JavaScript; the JSON API, POST /api/notes with X-XSRFToken, is there for
// scripts).
(function () {
  'use strict';
  const list = document.getElementById('notes');
  if (!list) return;

  // Text goes in with textContent only: a note is never parsed as HTML.
  function addNote(note) {
    if (list.querySelector('li.note[data-id="' + Number(note.id) + '"]')) return;  // already shown
    const li = document.createElement('li');
    li.className = 'note';
    li.dataset.id = String(note.id);
    const meta = document.createElement('div');
    meta.className = 'note-meta';
    const author = document.createElement('span');
    author.className = 'note-author';
    author.textContent = note.author;
    const time = document.createElement('time');
    time.textContent = note.created;
    meta.append(author, ' ', time);
    const body = document.createElement('p');
    body.className = 'note-body';
    body.textContent = note.body;
    li.append(meta, body);
    if (note.attachment) {
      const link = document.createElement('a');
      link.className = 'note-attachment';
      link.href = note.attachment.url;
      link.textContent = note.attachment.name;
      li.append(link);
    }
    list.prepend(li);
  }

  function connect(retryDelay) {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    const socket = new WebSocket(scheme + location.host + '/ws/notes');
    socket.addEventListener('open', function () {
      document.body.dataset.live = 'on';
      retryDelay = 1000;
    });
    socket.addEventListener('message', function (event) {
      const message = JSON.parse(event.data);
      if (message.type === 'note') addNote(message.note);
    });
    socket.addEventListener('close', function () {
      document.body.dataset.live = 'off';
      setTimeout(function () { connect(Math.min(retryDelay * 2, 30000)); }, retryDelay);
    });
  }
  connect(1000);
})();
