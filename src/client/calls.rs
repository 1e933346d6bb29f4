//! The page's side of the protocol: every call gets an id and a future for its own
//! answer, so two calls in flight can never be answered to the wrong caller, and a
//! stopped engine fails every pending call instead of leaving it hanging.

use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::oneshot;

use crate::protocol::{Call, CallId, Event, Failure, FailureKind, Reply, Request, Status};

/// News of a call before its answer.
#[derive(Debug, Clone, PartialEq)]
pub enum CallNews {
    Progress {
        done: usize,
        total: usize,
    },
    /// A file was skipped; the call goes on.
    Skipped(String),
}

/// Where a call's news goes.
pub type OnNews = Rc<dyn Fn(CallNews)>;

/// The answer a caller awaits.
pub type Answer = oneshot::Receiver<Result<Reply, Failure>>;

struct Pending {
    answer: oneshot::Sender<Result<Reply, Failure>>,
    on_news: Option<OnNews>,
}

/// The calls in flight, by id.
#[derive(Default)]
pub struct Calls {
    last: CallId,
    pending: HashMap<CallId, Pending>,
}

/// What an event from the engine means for the page.
pub enum Routed {
    /// The engine's own news.
    Status(Status),
    /// A call's progress: hand it to its callback (outside any borrow of [`Calls`]).
    News(OnNews, CallNews),
    /// Delivered to its caller, or about a call nobody waits for any more.
    Handled,
}

impl Calls {
    /// A new call for `request`; its answer comes through the returned receiver.
    pub fn start(&mut self, request: Request, on_news: Option<OnNews>) -> (Call, Answer) {
        self.last += 1;
        let (answer, receiver) = oneshot::channel();
        self.pending.insert(self.last, Pending { answer, on_news });
        (Call { id: self.last, request }, receiver)
    }

    /// Routes one event to the call it belongs to.
    pub fn route(&mut self, event: Event) -> Routed {
        let (id, outcome) = match event {
            Event::Status(status) => return Routed::Status(status),
            Event::Progress { id, done, total } => return self.news(id, CallNews::Progress { done, total }),
            Event::Skipped { id, message } => return self.news(id, CallNews::Skipped(message)),
            Event::Done { id, reply } => (id, Ok(*reply)),
            Event::Failed { id, error } => (id, Err(error)),
        };
        if let Some(pending) = self.pending.remove(&id) {
            // The caller may have given up (its future dropped): nothing to do then.
            let _ = pending.answer.send(outcome);
        }
        Routed::Handled
    }

    fn news(&self, id: CallId, news: CallNews) -> Routed {
        match self.pending.get(&id).and_then(|p| p.on_news.clone()) {
            Some(on_news) => Routed::News(on_news, news),
            None => Routed::Handled,
        }
    }

    /// The engine stopped (it crashed, or was restarted to cancel): every call still in
    /// flight fails with `why`.
    pub fn fail_all(&mut self, why: &str) {
        for (_, pending) in self.pending.drain() {
            let _ = pending.answer.send(Err(Failure::new(FailureKind::EngineStopped, why)));
        }
    }

    /// A call could not be sent: it fails at once with `why`.
    pub fn fail(&mut self, id: CallId, why: &str) {
        if let Some(pending) = self.pending.remove(&id) {
            let _ = pending.answer.send(Err(Failure::new(FailureKind::EngineStopped, why)));
        }
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

/// Awaits a call's answer. A call whose engine went away without answering fails as
/// stopped, never hangs.
pub async fn answer(receiver: Answer) -> Result<Reply, Failure> {
    receiver.await.unwrap_or_else(|_| Err(Failure::new(FailureKind::EngineStopped, "The inspection engine stopped. Reload the page.")))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use futures::executor::block_on;

    use super::*;
    use crate::protocol::BackendStatus;

    fn status() -> BackendStatus {
        BackendStatus { active: crate::protocol::Backend::Cpu, adapter: None, unavailable: None, notice: None }
    }

    #[test]
    fn two_calls_in_flight_get_their_own_answers_in_any_order() {
        let mut calls = Calls::default();
        let (first, a) = calls.start(Request::Stats, None);
        let (second, b) = calls.start(Request::Stats, None);
        assert_ne!(first.id, second.id);
        assert_eq!(calls.in_flight(), 2);
        // The second is answered first.
        calls.route(Event::Done { id: second.id, reply: Box::new(Reply::Stats { wasm_memory_bytes: 2 }) });
        calls.route(Event::Done { id: first.id, reply: Box::new(Reply::Stats { wasm_memory_bytes: 1 }) });
        assert_eq!(block_on(answer(a)), Ok(Reply::Stats { wasm_memory_bytes: 1 }));
        assert_eq!(block_on(answer(b)), Ok(Reply::Stats { wasm_memory_bytes: 2 }));
        assert_eq!(calls.in_flight(), 0);
    }

    #[test]
    fn progress_goes_to_its_own_call_and_status_to_nobody() {
        let mut calls = Calls::default();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let sink = seen.clone();
        let (training, _answer) = calls.start(Request::Stats, Some(Rc::new(move |n| sink.borrow_mut().push(n))));
        let (other, _other) = calls.start(Request::Stats, None);
        for event in [
            Event::Progress { id: training.id, done: 1, total: 3 },
            Event::Progress { id: other.id, done: 5, total: 9 },
            Event::Skipped { id: training.id, message: "a.txt: not a photo".into() },
        ] {
            if let Routed::News(on_news, news) = calls.route(event) {
                on_news(news);
            }
        }
        let expected = vec![CallNews::Progress { done: 1, total: 3 }, CallNews::Skipped("a.txt: not a photo".into())];
        assert_eq!(*seen.borrow(), expected);
        assert!(matches!(calls.route(Event::Status(Status::Backend(status()))), Routed::Status(_)));
    }

    #[test]
    fn a_stopped_engine_fails_every_pending_call() {
        let mut calls = Calls::default();
        let (_, a) = calls.start(Request::Stats, None);
        let (_, b) = calls.start(Request::Stats, None);
        calls.fail_all("The inspection engine was restarted.");
        for answer_of in [a, b] {
            let failure = block_on(answer(answer_of)).unwrap_err();
            assert_eq!(failure.kind, FailureKind::EngineStopped);
            assert!(failure.message.contains("restarted"));
        }
        // A table dropped with calls in it (the page went away) fails them too.
        let mut calls = Calls::default();
        let (_, c) = calls.start(Request::Stats, None);
        drop(calls);
        assert_eq!(block_on(answer(c)).unwrap_err().kind, FailureKind::EngineStopped);
    }

    #[test]
    fn a_late_answer_for_a_forgotten_call_is_ignored() {
        let mut calls = Calls::default();
        let (call, receiver) = calls.start(Request::Stats, None);
        drop(receiver);
        assert!(matches!(calls.route(Event::Done { id: call.id, reply: Box::new(Reply::Ack) }), Routed::Handled));
        assert!(matches!(calls.route(Event::Done { id: 999, reply: Box::new(Reply::Ack) }), Routed::Handled));
    }
}
