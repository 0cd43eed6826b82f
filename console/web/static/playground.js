// Playground: sends a message to POST /api/v1/chat with the session cookie
// and the page's CSRF token, and shows the answer as it streams in (the
// server-sent events are read from fetch's ReadableStream). The
// conversation continues until "New conversation" or another assistant is
// picked. An answer that waits for a tool approval shows the tool calls
// with Approve and Reject buttons; the decision goes to POST
// /api/v1/tool-approvals/ID and the continuation streams in as a new
// answer. Text from the server is only ever set with textContent (the
// answer's HTML is rendered and sanitized by the server).
(function () {
  'use strict';

  var section = document.querySelector('.playground');
  var form = document.getElementById('composer');
  if (!section || !form) {
    return;
  }
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute('content') : '';
  var maxBytes = Number(section.getAttribute('data-max-bytes')) || 16384;
  var messages = document.getElementById('messages');
  var input = document.getElementById('message');
  var picker = document.getElementById('assistant');
  var sendButton = document.getElementById('send');
  var errorBox = document.getElementById('composer-error');
  var statusLine = document.getElementById('conversation-status');
  var newButton = document.getElementById('new-conversation');
  var encoder = new TextEncoder();

  var conversationID = '';
  var running = null; // the AbortController of the request in flight

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.textContent = '';
    errorBox.hidden = true;
  }

  function setConversation(id) {
    conversationID = id || '';
    statusLine.textContent = conversationID
      ? 'Continuing conversation ' + conversationID + ' with ' + picker.value + '.'
      : 'New conversation.';
  }

  function startOver(reason) {
    if (running) {
      running.abort();
    }
    messages.textContent = '';
    clearError();
    setConversation('');
    if (reason) {
      statusLine.textContent = reason;
    }
    input.focus();
  }

  // A bubble for one answer: the text grows as deltas arrive. The text
  // element is a polite live region announcing additions only.
  function answerBubble() {
    var item = el('li', 'message message-ai');
    item.setAttribute('aria-busy', 'true');
    item.appendChild(el('span', 'visually-hidden', picker.value + ' answers: '));
    var status = el('p', 'message-status', 'Thinking…');
    var text = el('div', 'message-text');
    text.setAttribute('aria-live', 'polite');
    text.setAttribute('aria-atomic', 'false');
    text.setAttribute('aria-relevant', 'additions');
    item.appendChild(status);
    item.appendChild(text);
    messages.appendChild(item);
    item.scrollIntoView({ block: 'nearest' });
    return {
      item: item,
      text: '',
      append: function (delta) {
        if (status.parentNode) {
          status.remove();
        }
        this.text += delta;
        text.appendChild(document.createTextNode(delta));
      },
      status: function (s) {
        if (status.parentNode) {
          status.textContent = s;
        }
      },
      // render shows the final answer as HTML rendered by the server from
      // Markdown (raw HTML and unsafe links are never passed through).
      render: function (html) {
        if (status.parentNode) {
          status.remove();
        }
        text.innerHTML = html;
        text.classList.add('message-rendered');
      },
      replace: function (full) {
        if (status.parentNode) {
          status.remove();
        }
        this.text = full;
        text.textContent = full;
      },
      done: function () {
        if (status.parentNode) {
          status.remove();
        }
        item.setAttribute('aria-busy', 'false');
        form.scrollIntoView({ block: 'nearest' });
      }
    };
  }

  function addNotice(bubble, message) {
    var notice = el('p', 'notice notice-error');
    notice.setAttribute('role', 'alert');
    notice.textContent = message;
    bubble.item.appendChild(notice);
  }

  function addTrace(bubble, traceID) {
    if (!traceID) {
      return;
    }
    var meta = el('p', 'message-meta', 'Trace ');
    meta.appendChild(el('code', '', traceID));
    bubble.item.appendChild(meta);
  }

  function addCitations(bubble, citations) {
    if (!citations || citations.length === 0) {
      return;
    }
    var box = el('section', 'citations');
    box.setAttribute('aria-label', 'Sources');
    box.appendChild(el('h2', '', 'Sources'));
    var list = el('ol');
    citations.forEach(function (c) {
      var li = el('li');
      if (c.index) {
        li.value = c.index;
      }
      var title = c.title || c.document;
      if (c.section) {
        title += ' › ' + c.section;
      }
      li.appendChild(el('span', 'citation-title', title));
      if (c.document && c.document !== c.title) {
        li.appendChild(document.createTextNode(' '));
        li.appendChild(el('span', 'citation-document', c.document));
      }
      if (c.snippet) {
        li.appendChild(el('p', 'citation-snippet', c.snippet));
      }
      list.appendChild(li);
    });
    box.appendChild(list);
    bubble.item.appendChild(box);
  }

  // readEvents parses a text/event-stream body and calls onEvent(name, data)
  // for each event.
  async function readEvents(body, onEvent) {
    var reader = body.getReader();
    var decoder = new TextDecoder();
    var buffer = '';
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) {
        break;
      }
      buffer += decoder.decode(chunk.value, { stream: true });
      var end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        var block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        var name = 'message';
        var data = [];
        block.split('\n').forEach(function (line) {
          if (line === '' || line.charAt(0) === ':') {
            return;
          }
          var colon = line.indexOf(':');
          var field = colon < 0 ? line : line.slice(0, colon);
          var value = colon < 0 ? '' : line.slice(colon + 1);
          if (value.charAt(0) === ' ') {
            value = value.slice(1);
          }
          if (field === 'event') {
            name = value;
          } else if (field === 'data') {
            data.push(value);
          }
        });
        if (data.length > 0) {
          onEvent(name, data.join('\n'));
        }
      }
    }
  }

  function finish(bubble, answer) {
    if (answer.conversation_id) {
      setConversation(answer.conversation_id);
    }
    if (answer.answer && answer.answer_html) {
      bubble.text = answer.answer;
      bubble.render(answer.answer_html);
    } else if (answer.answer && answer.answer !== bubble.text) {
      bubble.replace(answer.answer);
    }
    if (!bubble.text) {
      bubble.replace(answer.notice ? '' : 'No answer.');
    }
    bubble.done();
    if (answer.outcome === 'awaiting_approval' && answer.approval) {
      addApproval(bubble, answer.approval, answer.notice);
      addCitations(bubble, answer.citations);
    } else {
      addCitations(bubble, answer.citations);
      if (answer.notice) {
        addNotice(bubble, answer.notice);
      }
    }
    addTrace(bubble, answer.trace_id);
  }

  // prettyArguments indents JSON arguments; anything else is shown as is.
  function prettyArguments(text) {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch (e) {
      return text || '';
    }
  }

  // addApproval shows the tool calls an answer waits for, with buttons to
  // approve or reject them.
  function addApproval(bubble, approval, notice) {
    var card = el('section', 'approval-card');
    card.setAttribute('aria-label', 'Approval needed');
    card.setAttribute('data-approval-id', approval.id || '');
    card.appendChild(el('h2', 'approval-title', 'Approval needed'));
    if (notice) {
      card.appendChild(el('p', 'approval-notice', notice));
    }
    (approval.tools || []).forEach(function (tool) {
      var call = el('div', 'approval-call');
      var name = el('p', 'approval-tool');
      name.appendChild(el('code', '', tool.name || ''));
      call.appendChild(name);
      call.appendChild(el('pre', 'approval-arguments', prettyArguments(tool.arguments)));
      card.appendChild(call);
    });
    if (approval.expires_at) {
      var expires = new Date(approval.expires_at);
      if (!isNaN(expires.getTime())) {
        card.appendChild(el('p', 'message-meta', 'Expires ' + expires.toLocaleString() + '.'));
      }
    }
    var actions = el('div', 'approval-actions');
    var approve = el('button', 'button button-primary', 'Approve');
    approve.type = 'button';
    approve.setAttribute('data-decision', 'approve');
    var reject = el('button', 'button button-quiet', 'Reject');
    reject.type = 'button';
    reject.setAttribute('data-decision', 'reject');
    actions.appendChild(approve);
    actions.appendChild(reject);
    card.appendChild(actions);
    var status = el('p', 'approval-status');
    status.setAttribute('aria-live', 'polite');
    card.appendChild(status);
    bubble.item.appendChild(card);

    function decide(decision) {
      if (running) {
        status.textContent = 'Wait until the current answer is complete.';
        return;
      }
      approve.disabled = true;
      reject.disabled = true;
      status.textContent = decision === 'approve' ? 'Approving…' : 'Rejecting…';
      run('/api/v1/tool-approvals/' + encodeURIComponent(approval.id), { decision: decision }, {
        // The decision was taken: replace the buttons with what it was.
        accepted: function () {
          actions.remove();
          status.textContent = decision === 'approve' ? 'Approved' : 'Rejected';
          card.classList.add('approval-decided');
        },
        // It was refused: say why, and let the user try again unless
        // trying again cannot help (decided already, not theirs, gone).
        refused: function (res, message) {
          status.textContent = message;
          if (res && (res.status === 409 || res.status === 403 || res.status === 404)) {
            actions.remove();
          } else {
            approve.disabled = false;
            reject.disabled = false;
          }
        }
      });
    }
    approve.addEventListener('click', function () { decide('approve'); });
    reject.addEventListener('click', function () { decide('reject'); });
  }

  function failed(bubble, error) {
    bubble.done();
    if (error.conversation_id) {
      setConversation(error.conversation_id);
    }
    var message = (error.error && error.error.message) || 'The answer failed.';
    addNotice(bubble, bubble.text ? 'The answer was interrupted: ' + message : message);
    addTrace(bubble, error.trace_id);
  }

  function errorMessage(res, payload) {
    if (res.status === 401) {
      return 'Your session has expired: reload the page and sign in again.';
    }
    return (payload.error && payload.error.message) || ('The server answered with status ' + res.status + '.');
  }

  // run posts body to url and streams the answer into a new bubble.
  // hooks.accepted is called once the server accepted the request (the
  // stream started); hooks.refused(res, message) when it refused it, in
  // which case no bubble is added (without hooks, the refusal shows in a
  // bubble, as for a question).
  async function run(url, body, hooks) {
    hooks = hooks || {};
    var controller = new AbortController();
    running = controller;
    sendButton.disabled = true;
    form.setAttribute('aria-busy', 'true');
    // A question shows its answer's bubble at once ("Thinking…"); a
    // decision only once the server took it.
    var bubble = hooks.refused ? null : answerBubble();
    var ended = false;
    try {
      var res = await fetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: {
          'Content-Type': 'application/json',
          'Accept': 'text/event-stream',
          'X-CSRF-Token': csrf
        },
        body: JSON.stringify(body),
        signal: controller.signal
      });
      var type = res.headers.get('Content-Type') || '';
      if (!res.ok || type.indexOf('text/event-stream') !== 0) {
        var payload = {};
        try {
          payload = await res.json();
        } catch (e) {
          payload = {};
        }
        ended = true;
        if (res.ok && res.status === 202) {
          // Decided for a chat platform: the bot goes on there.
          if (hooks.accepted) {
            hooks.accepted(res);
          }
          return;
        }
        var message = errorMessage(res, payload);
        if (hooks.refused) {
          hooks.refused(res, message);
          return;
        }
        failed(bubble || answerBubble(), { error: { message: message }, trace_id: payload.trace_id, conversation_id: payload.conversation_id });
        return;
      }
      if (hooks.accepted) {
        hooks.accepted(res);
      }
      bubble = bubble || answerBubble();
      await readEvents(res.body, function (name, data) {
        var value;
        try {
          value = JSON.parse(data);
        } catch (e) {
          return;
        }
        if (name === 'delta') {
          bubble.append(value.text || '');
        } else if (name === 'status') {
          bubble.status(value.status || '');
        } else if (name === 'done') {
          ended = true;
          finish(bubble, value);
        } else if (name === 'error') {
          ended = true;
          failed(bubble, value);
        }
      });
      if (!ended) {
        ended = true;
        failed(bubble, { error: { message: 'The connection closed before the answer was complete.' } });
      }
    } catch (err) {
      if (!ended) {
        var lost = err && err.name === 'AbortError'
          ? 'Stopped.'
          : 'The connection to the server was lost; please try again.';
        if (!bubble && hooks.refused) {
          hooks.refused(null, lost);
        } else {
          failed(bubble || answerBubble(), { error: { message: lost } });
        }
      }
    } finally {
      if (running === controller) {
        running = null;
      }
      sendButton.disabled = false;
      form.removeAttribute('aria-busy');
    }
  }

  function ask(text) {
    var body = { message: text };
    if (conversationID) {
      body.conversation_id = conversationID;
    } else {
      body.assistant = picker.value;
    }
    var question = el('li', 'message message-user');
    question.appendChild(el('span', 'visually-hidden', 'You: '));
    question.appendChild(el('p', 'message-text', text));
    messages.appendChild(question);
    return run('/api/v1/chat', body);
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    clearError();
    if (running) {
      return;
    }
    var text = input.value;
    if (text.trim() === '') {
      showError('Write a question or a request first.');
      input.focus();
      return;
    }
    var size = encoder.encode(text).length;
    if (size > maxBytes) {
      showError('The message is ' + size + ' bytes, over the limit of ' + maxBytes + ' bytes: shorten it.');
      input.focus();
      return;
    }
    input.value = '';
    ask(text);
  });

  input.addEventListener('keydown', function (event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  newButton.addEventListener('click', function () {
    startOver('');
  });

  picker.addEventListener('change', function () {
    if (conversationID || messages.childElementCount > 0) {
      startOver('New conversation with ' + picker.value + '.');
    }
  });
})();
