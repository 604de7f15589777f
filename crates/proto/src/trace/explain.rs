//! The explanations: one line per event, written as an (English, Korean) pair so that no
//! line can fall back to English.

use std::io;

use super::{Datagram, Event, Kind, Lang, Timeout, UringOp};
use crate::error::Step;

/// The most a send can hold and still be said to leave in one packet: one Ethernet
/// segment (1500-byte MTU, less the IP and TCP headers with timestamps). Loopback's
/// segments are larger, so a send this small fits one packet on any usual path.
const ONE_SEGMENT: usize = 1448;

/// The one-line explanation of an event, in `lang`. Every text is written as an
/// (English, Korean) pair, so no line can be missing its Korean.
pub fn explain(event: &Event<'_>, lang: Lang) -> String {
    match event {
        Event::Socket { .. }
        | Event::ReuseAddr { .. }
        | Event::ReusePort { .. }
        | Event::RecvBuffer { .. }
        | Event::DupListener { .. }
        | Event::DualStack { .. }
        | Event::Bind { .. }
        | Event::Listen { .. }
        | Event::AcceptTimeout { .. }
        | Event::Activated { .. }
        | Event::StopListening { .. }
        | Event::BoundPort { .. }
        | Event::Ephemeral { .. }
        | Event::BoundBySendto { .. }
        | Event::PeerName { .. }
        | Event::SocketTimeout { .. }
        | Event::NonBlocking { .. }
        | Event::Linger0 { .. } => set_up(event, lang),
        Event::Accept { .. }
        | Event::Connect { .. }
        | Event::Read { .. }
        | Event::Unread { .. }
        | Event::Write { .. }
        | Event::SendMore { .. }
        | Event::ShutdownWrite { .. }
        | Event::Close { .. }
        | Event::Disconnect { .. }
        | Event::ShutdownBoth { .. }
        | Event::SendTo { .. }
        | Event::RecvFrom { .. }
        | Event::RecvMmsg { .. }
        | Event::SendMmsg { .. }
        | Event::ProxyHeader { .. } => exchange(event, lang),
        Event::Select { .. }
        | Event::Fork { .. }
        | Event::CloseCopy { .. }
        | Event::Waitpid { .. }
        | Event::Exit { .. }
        | Event::EpollCreate { .. }
        | Event::EpollAdd { .. }
        | Event::EpollDel { .. }
        | Event::EpollWait { .. }
        | Event::Eventfd { .. }
        | Event::PollListener { .. }
        | Event::AcceptEmpty { .. }
        | Event::IdleRepeats { .. }
        | Event::Thread { .. }
        | Event::UringSetup { .. }
        | Event::UringEnter { .. }
        | Event::Draining { .. }
        | Event::Drained => waiting(event, lang),
        Event::UringDone {
            op, result, linked, ..
        } => uring_explain(*op, *result, *linked, lang),
        Event::Failed { step, err, .. } | Event::FailedAt { step, err, .. } => {
            let mut s = say(lang, "failed: ", &format!("{} 실패: ", step_ko(*step)));
            s += &failure_reason(*step, err, lang);
            s
        }
    }
}

/// A socket being made, named and configured: `socket()`, `bind()`, `listen()`, the
/// options, the addresses the kernel chose.
fn set_up(event: &Event<'_>, lang: Lang) -> String {
    let say = |en: &str, ko: &str| say(lang, en, ko);
    match event {
        Event::Socket {
            kind: Kind::Stream, ..
        } => say(
            "create a TCP socket: a new descriptor, with no address yet",
            "소켓 생성: TCP 소켓의 파일 디스크립터를 받습니다 (주소는 아직 없음)",
        ),
        Event::Socket {
            kind: Kind::Dgram, ..
        } => say(
            "create a UDP socket: datagrams, no connection, no listen()/accept()",
            "소켓 생성: UDP 소켓. 연결 없이 데이터그램을 주고받습니다 (listen/accept 없음)",
        ),
        Event::ReuseAddr {
            kind: Kind::Stream, ..
        } => say(
            "let bind() take the port even while old connections wait in TIME_WAIT",
            "주소 재할당 허용: Time-wait 상태의 연결이 남아 있어도 같은 포트에 bind() 할 수 있습니다",
        ),
        Event::ReuseAddr {
            kind: Kind::Dgram, ..
        } => say(
            "UDP has no connections left to wait out: this only lets sockets with the option share the port",
            "UDP에는 기다릴 연결이 없습니다: 같은 옵션을 켠 다른 소켓과 포트를 함께 쓸 수 있게 할 뿐입니다",
        ),
        Event::RecvBuffer { .. } => say(
            "room for the datagrams that come while the server is busy: a burst waits, it is not dropped",
            "서버가 바쁠 때 오는 데이터그램을 담을 공간: 몰려와도 버리지 않고 기다리게 합니다",
        ),
        Event::ReusePort { .. } => say(
            "one port, several sockets: the kernel spreads new connections (UDP: senders) over them",
            "포트 공유: 같은 포트의 여러 소켓에 커널이 새 연결(UDP는 보낸 쪽)을 나눠 줍니다",
        ),
        Event::DupListener { .. } => say(
            "another descriptor of the listening socket, for another worker: the workers share one accept queue",
            "서버 소켓의 디스크립터를 하나 더: 다른 워커용이며, 워커들이 연결요청 대기 큐 하나를 함께 씁니다",
        ),
        Event::DualStack { .. } => say(
            "dual-stack: IPv4 clients reach this IPv6 socket too, as ::ffff:a.b.c.d",
            "듀얼 스택: IPv4 클라이언트도 이 IPv6 소켓으로 받습니다 (::ffff:a.b.c.d 형태)",
        ),
        Event::Bind { addr, .. } => {
            let any = addr.ip().is_unspecified();
            let what = match (any, addr.is_ipv6()) {
                (true, false) => say(
                    "INADDR_ANY (0.0.0.0) = every local IPv4 address",
                    "INADDR_ANY(0.0.0.0)는 이 컴퓨터의 모든 IPv4 주소",
                ),
                (true, true) => say(
                    "in6addr_any (::) = every local address",
                    "in6addr_any(::)는 이 컴퓨터의 모든 주소",
                ),
                (false, _) => say(
                    "only traffic sent to this IP reaches the socket",
                    "이 IP로 오는 연결요청·데이터그램만 받습니다",
                ),
            };
            let port0 = addr.port() == 0;
            match lang {
                Lang::En if port0 => format!("assign the address: {what}; port 0: the kernel picks one"),
                Lang::En => format!("assign the address: {what}"),
                Lang::Ko if port0 && any => {
                    format!("주소 할당: {what}, 포트 0은 커널이 고르는 빈 포트입니다")
                }
                Lang::Ko if any => format!("주소 할당: {what}입니다"),
                Lang::Ko if port0 => format!("주소 할당: {what}. 포트 0은 커널이 고르는 빈 포트입니다"),
                Lang::Ko => format!("주소 할당: {what}"),
            }
        }
        Event::Listen { .. } => say(
            "listening: the kernel completes handshakes; they wait in the accept queue (backlog + 1) for accept()",
            "연결요청 대기상태(서버 소켓): 연결은 연결요청 대기 큐(backlog+1개까지)에서 accept()를 기다립니다",
        ),
        Event::AcceptTimeout { .. } => say(
            "a blocking accept() now gives up after this long, so the server can see when it is told to stop",
            "블로킹 accept()가 이 시간마다 돌아오게 해서, 서버가 종료 요청을 알아챌 수 있게 합니다",
        ),
        Event::Activated { .. } => say(
            "socket activation: this listening socket was passed in (LISTEN_FDS): no socket/bind/listen",
            "소켓 활성화: 서버 소켓을 넘겨받았습니다 (socket/bind/listen 없음)",
        ),
        Event::StopListening { .. } => say(
            "stopping: the kernel takes no new connections; those already queued are still accepted and served",
            "종료 중: 새 연결요청은 더 받지 않고, 이미 연결요청 대기 큐에 있는 연결은 accept()해서 처리합니다",
        ),
        Event::BoundPort { .. } => say(
            "port 0 was asked for: this is the port the kernel picked",
            "포트 0을 요청했으므로, 커널이 골라 할당한 실제 포트입니다",
        ),
        Event::Ephemeral { .. } => say(
            "the kernel gave the client its address and an ephemeral port at connect(): no bind()",
            "클라이언트의 IP와 임의의 포트는 connect() 때 커널이 자동으로 할당했습니다 (bind() 없음)",
        ),
        Event::Linger0 { .. } => say(
            "linger 0: the close() below resets the connection (RST) and drops unsent data",
            "linger 0: 아래 close()는 FIN 대신 RST로 연결을 끊고, 보내지 못한 데이터는 버립니다",
        ),
        Event::NonBlocking { on: true, .. } => say(
            "non-blocking: with clients to wait for, accept() must never sleep; EAGAIN means the queue is empty",
            "넌블로킹 모드: 기다릴 클라이언트가 있으니 accept()에서 잠들면 안 됩니다. 큐가 비면 EAGAIN",
        ),
        Event::NonBlocking { on: false, .. } => say(
            "blocking again: no client to wait for, so the loop sleeps in accept() like the textbook's",
            "다시 블로킹 모드: 기다릴 클라이언트가 없어 교재의 서버처럼 accept()에서 잠듭니다",
        ),
        Event::SocketTimeout {
            which: Timeout::Receive,
            limit: Some(_),
            ..
        } => say(
            "bound the blocking receives: one that waits this long fails with EAGAIN",
            "블로킹 수신의 제한 시간: 이만큼 기다려도 데이터가 없으면 EAGAIN으로 실패합니다",
        ),
        Event::SocketTimeout {
            which: Timeout::Send,
            limit: Some(_),
            ..
        } => say(
            "bound the blocking sends: one that finds no room for this long fails with EAGAIN",
            "블로킹 송신의 제한 시간: 이만큼 기다려도 보낼 공간이 없으면 EAGAIN으로 실패합니다",
        ),
        Event::SocketTimeout { limit: None, .. } => say(
            "no time limit: a blocking call may wait for ever",
            "제한 시간 없음: 블로킹 호출이 끝없이 기다릴 수 있습니다",
        ),
        Event::BoundBySendto { .. } => say(
            "no bind(): the kernel gave the socket its address and a port at its first sendto()",
            "bind() 없음: 첫 sendto() 때 커널이 IP와 포트를 자동으로 할당했습니다",
        ),
        Event::PeerName { .. } => say(
            "the ring's accept asks for no address: asked for now, for the trace or a log line",
            "링의 accept는 주소를 받지 않습니다: 추적이나 로그에 쓰려고 지금 묻습니다",
        ),
        // The other events are worded by the other groups (see `explain`).
        _ => String::new(),
    }
}

/// A connection or a datagram at work: `accept()`, `connect()`, the reads and writes,
/// the half-close, the close and the reset, `sendto()`/`recvfrom()`.
fn exchange(event: &Event<'_>, lang: Lang) -> String {
    let say = |en: &str, ko: &str| say(lang, en, ko);
    match event {
        Event::ProxyHeader {
            addresses: Some(_), ..
        } => say(
            "the balancer in front names the real client: logs and this trace use its address",
            "앞단의 로드밸런서가 실제 클라이언트 주소를 알려 줍니다: 로그와 이 추적은 그 주소를 씁니다",
        ),
        Event::ProxyHeader { addresses: None, .. } => say(
            "the balancer speaks for itself (a health check): the connection's own addresses stand",
            "로드밸런서 자신의 연결입니다(헬스 체크): 연결의 실제 주소를 그대로 씁니다",
        ),
        Event::Accept { .. } => say(
            "accept: a NEW descriptor for this client; the listening socket keeps listening",
            "연결 수락: 이 클라이언트와 통신할 새 소켓이 생깁니다. 서버 소켓은 계속 연결요청을 기다립니다",
        ),
        Event::Connect {
            kind: Kind::Stream, ..
        } => say(
            "connect: the handshake is done; the connection waits in the server's accept queue until accept()",
            "연결요청: 3-way handshake가 끝나 연결이 서버의 연결요청 대기 큐에 들어갔습니다 (accept() 전)",
        ),
        Event::Connect {
            kind: Kind::Dgram, ..
        } => say(
            "connect on UDP sends nothing: it only records the server as the socket's peer",
            "UDP의 connect()는 아무것도 보내지 않고, 목적지(서버) 주소만 소켓에 등록합니다",
        ),
        Event::Read { data: [], .. } => say(
            "read() = 0 is EOF: the peer closed its side (close or half-close)",
            "read()가 0을 반환하면 EOF: 상대가 연결을 닫았거나 Half-close 했습니다",
        ),
        Event::Read { .. } => say(
            "receive: TCP has no message boundaries, one read() may get part of a message",
            "데이터 수신: TCP에는 데이터의 경계가 없어 read() 한 번에 메시지 일부만 올 수도 있습니다",
        ),
        Event::Unread { data: None, .. } => say(
            "nothing unread yet: half-close, so the reply leaves before close() (later input makes it a RST)",
            "읽지 않은 데이터 없음: Half-close로 응답을 먼저 내보냅니다 (이후 close()가 RST여도 안전)",
        ),
        Event::Unread { data: Some([]), .. } => say(
            "the client's FIN is here (it half-closed or closed): nothing unread, close() is clean",
            "클라이언트의 FIN이 왔습니다(Half-close 또는 close): 남은 데이터가 없어 깔끔하게 닫힙니다",
        ),
        Event::Unread { .. } => say(
            "the client sent data: read it away first, so close() does not send RST",
            "클라이언트가 보낸 데이터가 있습니다: 마저 읽고 닫아서 close() 때 RST가 가지 않게 합니다",
        ),
        Event::Write { data: [.., 0], .. } => say(
            "send: the trailing \\0 is the C string's NUL, sent with the text",
            "데이터 송신: 끝의 \\0은 C 문자열의 끝을 나타내는 NUL로, 함께 보냅니다",
        ),
        Event::Write { .. } => say(
            "send the bytes to the peer",
            "데이터 송신: 상대 소켓으로 바이트를 보냅니다",
        ),
        Event::SendMore { data, .. } if data.len() > ONE_SEGMENT => say(
            "send: full segments leave now; MSG_MORE holds only the last part, which leaves with the FIN",
            "데이터 송신: 꽉 찬 세그먼트는 바로 나가고, MSG_MORE는 마지막 조각만 잡아 두었다가 FIN과 함께 보냅니다",
        ),
        Event::SendMore { data: [.., 0], .. } => say(
            "send, held by MSG_MORE: leaves in one packet with the FIN that follows; \\0 is the C string's NUL",
            "데이터 송신: MSG_MORE로 잡아 두었다가 뒤따르는 FIN과 한 패킷으로 보냅니다. \\0은 C 문자열의 NUL",
        ),
        Event::SendMore { .. } => say(
            "send, held by MSG_MORE: leaves in one packet with the FIN of the close() or shutdown() below",
            "데이터 송신: MSG_MORE로 잡아 두었다가 아래 close()나 shutdown()의 FIN과 한 패킷으로 보냅니다",
        ),
        Event::ShutdownWrite { .. } => say(
            "half-close: send EOF (FIN) to the peer, but keep reading",
            "Half-close: 출력 스트림만 종료해 상대에게 EOF를 보내고, 입력 스트림으로는 계속 받습니다",
        ),
        Event::Close { .. } => say(
            "close the socket and release its descriptor",
            "소켓 닫기: 소켓을 닫고 파일 디스크립터를 운영체제에 돌려줍니다",
        ),
        Event::Disconnect { .. } => say(
            "the stop's grace is over: reset this connection (RST) and wake the thread blocked on it",
            "종료 유예 시간이 끝났습니다: 이 연결을 RST로 끊고, 여기서 멈춰 있는 스레드를 깨웁니다",
        ),
        Event::ShutdownBoth { .. } => say(
            "the stop's grace is over: shut both directions to wake the thread blocked on it",
            "종료 유예 시간이 끝났습니다: 양방향을 모두 닫아 여기서 멈춰 있는 스레드를 깨웁니다",
        ),
        Event::SendTo { data: [], .. } => say(
            "send an empty datagram: in UDP even 0 bytes is a message",
            "데이터그램 송신: 빈 데이터그램도 UDP에서는 하나의 메시지입니다",
        ),
        Event::SendTo { .. } => say(
            "send one datagram to this address; UDP keeps its boundaries",
            "데이터그램 송신: 목적지 주소로 데이터그램 하나를 보냅니다 (경계가 유지됨)",
        ),
        Event::RecvFrom { data: [], .. } => say(
            "receive an empty datagram: in UDP 0 bytes is a message, not EOF",
            "데이터그램 수신: 빈 데이터그램입니다. UDP에서 0바이트는 EOF가 아닙니다",
        ),
        Event::RecvFrom { .. } => say(
            "receive one whole datagram and the address of its sender",
            "데이터그램 수신: 데이터그램 하나를 통째로 받고, 보낸 쪽 주소도 알게 됩니다",
        ),
        Event::RecvMmsg {
            got: [Datagram { data: [], .. }],
            ..
        } => say(
            "batched recvfrom(): wait for one, take the queued ones too; one, empty: 0 bytes is a message",
            "recvfrom() 묶음: 하나를 기다려 쌓인 것까지 받음. 빈 것 하나: 0바이트도 메시지",
        ),
        Event::RecvMmsg { got: [_], .. } => say(
            "batched recvfrom(): wait for one datagram, take those queued behind it too; one had come",
            "recvfrom() 묶음: 하나를 기다려 뒤에 쌓인 것까지 받습니다. 이번엔 하나",
        ),
        Event::RecvMmsg { .. } => say(
            "batched recvfrom(): one call took every queued datagram, each whole, each with its sender",
            "recvfrom() 묶음: 쌓인 데이터그램을 한 번에 받음 (각각 통째로, 보낸 쪽 주소와 함께)",
        ),
        Event::SendMmsg { .. } => say(
            "batched sendto(): one call sends every reply, each its own datagram to its own sender",
            "sendto() 묶음: 답장을 한 번에 보냄 (각각 따로 된 데이터그램으로, 각자의 보낸 쪽에게)",
        ),
        // The other events are worded by the other groups (see `explain`).
        _ => String::new(),
    }
}

/// How a server waits for many clients: processes, threads, `select()`, `epoll`,
/// io_uring, and a blocking server's idle rounds.
fn waiting(event: &Event<'_>, lang: Lang) -> String {
    let say = |en: &str, ko: &str| say(lang, en, ko);
    match event {
        Event::Draining { .. } => say(
            "stopping: the agent now answers drain, so the balancer sends no new clients; serving goes on",
            "종료 준비: 에이전트가 drain을 알려 로드밸런서가 새 클라이언트를 보내지 않습니다. 처리는 계속합니다",
        ),
        Event::Drained => say(
            "the balancer has had time to stop sending: now the server stops accepting",
            "로드밸런서가 새 연결을 멈출 시간이 지났습니다: 이제 연결 수락을 멈춥니다",
        ),
        Event::Select { .. } => say(
            "select: sleep until one of these descriptors is ready; a set holds only 0..1023 (FD_SETSIZE)",
            "select: 이 중 하나가 준비될 때까지 기다립니다. 한 집합에는 0..1023(FD_SETSIZE)만 넣을 수 있습니다",
        ),
        Event::Fork { in_child: false, .. } => say(
            "fork: a copy of this process will serve the client; the parent goes back to accept()",
            "fork: 이 프로세스를 복사한 자식이 클라이언트를 맡고, 부모는 다시 accept()로 돌아갑니다",
        ),
        Event::Fork { in_child: true, .. } => say(
            "in the child: it has a copy of every descriptor, the client's and the listening socket",
            "자식 프로세스: 클라이언트 소켓과 서버 소켓, 모든 파일 디스크립터의 복사본을 가집니다",
        ),
        Event::CloseCopy { in_child: false, .. } => say(
            "the parent closes its copy of the client's socket: the connection ends when both copies are closed",
            "부모는 클라이언트 소켓의 복사본을 닫습니다: 두 복사본이 모두 닫혀야 연결이 끝납니다",
        ),
        Event::CloseCopy { in_child: true, .. } => say(
            "the child closes its copy of the listening socket: it serves one client, the parent accepts",
            "자식은 서버 소켓의 복사본을 닫습니다: 자식은 클라이언트 하나만, 연결 수락은 부모가 합니다",
        ),
        Event::Waitpid { .. } => say(
            "reap the finished child: without waitpid() it would stay a zombie in the process table",
            "끝난 자식을 거둡니다: waitpid() 하지 않으면 좀비 프로세스로 남습니다",
        ),
        Event::Exit { .. } => say(
            "the child has served its client and ends; the parent reaps it",
            "자식이 클라이언트 처리를 마치고 종료합니다. 부모가 거둡니다",
        ),
        Event::EpollCreate { .. } => say(
            "create an epoll instance: the kernel watches many sockets for this one thread",
            "epoll 인스턴스 생성: 여러 소켓의 이벤트를 운영체제가 대신 관찰하는 저장소를 만듭니다",
        ),
        Event::EpollAdd { events, .. } if events.exclusive => say(
            "register the shared listening socket: a new connection wakes one worker's epoll_wait(), not all",
            "함께 쓰는 서버 소켓 등록: 새 연결이 오면 워커 하나만 epoll_wait()에서 깨어납니다",
        ),
        Event::EpollAdd { events, .. } if events.edge => say(
            "register the socket: epoll_wait() reports it when ready (EPOLLET: once per change)",
            "관찰 대상 등록: 준비되면 epoll_wait()가 알려 줍니다 (EPOLLET: 상태가 바뀔 때 한 번, 엣지 트리거)",
        ),
        Event::EpollAdd { .. } => say(
            "register the socket: epoll_wait() reports it while it is ready",
            "관찰 대상 등록: 준비된 동안 epoll_wait()가 알려 줍니다",
        ),
        Event::EpollDel { .. } => say(
            "stop watching the socket: it is about to be closed",
            "관찰 대상 삭제: 곧 닫을 소켓입니다",
        ),
        Event::EpollWait { ready: [], .. } => say(
            "the time limit ran out with nothing ready: a deadline is due",
            "제한 시간이 지났고 준비된 것은 없습니다: 처리할 마감 시각이 되었습니다",
        ),
        Event::EpollWait { .. } => say(
            "wait for events: only the ready descriptors come back, no scan of every socket as with select()",
            "이벤트 대기: select()처럼 전부 확인하지 않고, 준비된 파일 디스크립터만 돌려받습니다",
        ),
        Event::Eventfd { ring: true, .. } => say(
            "an eventfd the ring keeps a read queued on: another thread writes to it to end the wait for a stop",
            "링이 읽기를 걸어 두는 eventfd: 종료 요청 때 다른 스레드가 여기에 써서 대기를 끝냅니다",
        ),
        Event::Eventfd { ring: false, .. } => say(
            "an eventfd in the epoll set: another thread writes to it to wake epoll_wait() for a stop",
            "epoll에 넣어 두는 eventfd: 종료 요청 때 다른 스레드가 여기에 써서 epoll_wait()를 깨웁니다",
        ),
        Event::PollListener { ready: true, .. } => say(
            "a connection is queued: accept() will not wait",
            "연결요청 대기 큐에 연결이 있습니다: accept()가 기다리지 않습니다",
        ),
        Event::PollListener { ready: false, .. } => say(
            "no client within the limit: look for a stop, then wait again",
            "제한 시간 안에 클라이언트가 없었습니다: 종료 요청을 확인하고 다시 기다립니다",
        ),
        Event::AcceptEmpty { blocking: false, .. } => say(
            "the accept queue is empty: every queued client has been taken; the server waits for the next",
            "연결요청 대기 큐가 비었습니다: 기다리던 클라이언트를 모두 받았으니 다음 연결요청을 기다립니다",
        ),
        Event::AcceptEmpty { blocking: true, .. } => say(
            "SO_RCVTIMEO ran out with nobody queued: look for a stop, then wait again",
            "SO_RCVTIMEO 동안 연결요청이 없었습니다: 종료 요청을 확인하고 다시 기다립니다",
        ),
        Event::IdleRepeats { times, .. } => match lang {
            Lang::En => format!(
                "while no client came, these two calls repeated {} (each bounded, to look for a stop)",
                crate::words::counted(*times, "more time")
            ),
            Lang::Ko => {
                format!("클라이언트가 없는 동안 이 두 호출이 {times}번 더 반복되었습니다(종료 요청 확인용)")
            }
        },
        Event::Thread { new: true, .. } => say(
            "a new thread serves this client with blocking calls; the main thread goes back to accept()",
            "새 스레드가 이 클라이언트를 맡고, 메인 스레드는 다시 accept()로 돌아갑니다",
        ),
        Event::Thread { new: false, .. } => say(
            "a thread done with its last client takes this one: no new thread (creating one costs ~95 µs)",
            "앞 클라이언트를 마친 스레드가 이어서 맡습니다: 스레드를 새로 만들지 않습니다(약 95µs 절약)",
        ),
        Event::UringSetup { .. } => say(
            "io_uring: two rings shared with the kernel, calls queued in one, results read from the other",
            "io_uring: 커널과 함께 쓰는 두 링을 만듭니다. 한쪽에 요청을 쌓고 다른 쪽에서 결과를 읽습니다",
        ),
        Event::UringEnter { .. } => say(
            "one system call submits the queued calls and reaps many clients' results (textbook: one per call)",
            "시스템 콜 한 번으로 쌓인 요청을 넘기고 여러 클라이언트의 결과를 거둡니다 (교재는 호출마다 한 번)",
        ),
        // The other events are worded by the other groups (see `explain`).
        _ => String::new(),
    }
}

/// `en` or `ko`, as `lang` asks.
fn say(lang: Lang, en: &str, ko: &str) -> String {
    match lang {
        Lang::En => en.to_string(),
        Lang::Ko => ko.to_string(),
    }
}

/// The tutorials' name for each step, for Korean failure lines.
fn step_ko(step: Step) -> &'static str {
    match step {
        Step::Resolve => "이름 해석",
        Step::Socket => "소켓 생성",
        Step::Setsockopt => "소켓 옵션 설정",
        Step::Bind => "주소 할당",
        Step::Listen => "연결요청 대기상태 진입",
        Step::Accept => "연결 수락",
        Step::Connect => "연결요청",
        Step::Read => "데이터 수신",
        Step::Write => "데이터 송신",
        Step::Shutdown => "Half-close",
        Step::Sendto => "데이터그램 송신",
        Step::Recvfrom => "데이터그램 수신",
        Step::Sendmmsg => "데이터그램 여러 개 송신",
        Step::Recvmmsg => "데이터그램 여러 개 수신",
        Step::Getsockname => "주소 확인",
        Step::Fcntl => "디스크립터 설정(fcntl)",
        Step::EpollCreate => "epoll 인스턴스 생성",
        Step::EpollCtl => "epoll 관심 대상 등록",
        Step::EpollWait => "이벤트 대기(epoll_wait)",
        Step::Eventfd => "깨우기용 eventfd 생성",
        Step::Spawn => "스레드 생성",
        Step::Select => "이벤트 대기(select)",
        Step::Fork => "프로세스 복사(fork)",
        Step::Waitpid => "자식 프로세스 회수(waitpid)",
        Step::UringSetup => "io_uring 생성",
        Step::UringEnter => "io_uring 요청 제출",
    }
}

/// Why a call failed, in words, from its errno (and the step, where that matters).
fn failure_reason(step: Step, err: &io::Error, lang: Lang) -> String {
    let say = |en: &str, ko: &str| say(lang, en, ko);
    let datagram = matches!(
        step,
        Step::Sendto | Step::Recvfrom | Step::Sendmmsg | Step::Recvmmsg
    );
    let timed_out = || {
        say(
            "timed out, nothing arrived within the time limit",
            "제한 시간 안에 응답이 없었습니다 (시간 초과)",
        )
    };
    let Some(code) = err.raw_os_error() else {
        return match err.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => timed_out(),
            _ => say("see the error text in the call", "호출 결과의 오류 내용을 보세요"),
        };
    };
    match code {
        libc::ECONNREFUSED if datagram => say(
            "nothing listens on that port (an ICMP port unreachable came back)",
            "그 포트에서 받는 소켓이 없어 ICMP port unreachable이 돌아왔습니다",
        ),
        libc::ECONNREFUSED => say(
            "nothing listens on that port, so the host answered with RST",
            "그 포트에서 연결요청을 기다리는 소켓이 없어 RST로 거절되었습니다",
        ),
        libc::EADDRINUSE => say(
            "another socket already holds this address and port",
            "다른 소켓이 이미 이 주소와 포트를 사용하고 있습니다",
        ),
        libc::EADDRNOTAVAIL => say(
            "that IP is not one of this machine's addresses",
            "그 IP는 이 컴퓨터의 주소가 아닙니다",
        ),
        libc::EACCES if step == Step::Bind => say(
            "ports below 1024 need privileges",
            "1024 미만의 포트에는 관리자 권한이 필요합니다",
        ),
        libc::EACCES | libc::EPERM => say("permission denied", "권한이 없습니다"),
        libc::EAFNOSUPPORT => say(
            "this address family is not available here (IPv6 disabled?)",
            "이 주소 체계를 쓸 수 없습니다 (IPv6가 꺼져 있나요?)",
        ),
        libc::ETIMEDOUT => timed_out(),
        // A blocking socket with SO_RCVTIMEO/SO_SNDTIMEO reports its timeout as EAGAIN.
        c if c == libc::EAGAIN || c == libc::EWOULDBLOCK => timed_out(),
        libc::ECONNRESET => say(
            "the peer reset the connection (RST)",
            "상대가 연결을 강제로 끊었습니다 (RST)",
        ),
        libc::EPIPE => say(
            "the peer has closed, so nothing more can be sent",
            "상대가 연결을 닫아 더는 보낼 수 없습니다",
        ),
        libc::ECONNABORTED => say(
            "the connection died in the queue before accept() took it",
            "accept()가 꺼내기 전에 연결요청 대기 큐의 연결이 끊겼습니다",
        ),
        libc::ENETUNREACH | libc::EHOSTUNREACH => say(
            "no route to that host or network",
            "그 호스트(네트워크)로 가는 경로가 없습니다",
        ),
        libc::EMFILE | libc::ENFILE => say("out of file descriptors", "파일 디스크립터가 바닥났습니다"),
        libc::ENOBUFS | libc::ENOMEM => say("out of kernel memory", "커널 메모리가 부족합니다"),
        libc::EINTR if step == Step::Accept => say(
            "a signal came while accept() waited (a child ended, or a stop): the server looks around",
            "accept() 도중 시그널이 왔습니다(자식 종료나 종료 요청). 할 일을 확인합니다",
        ),
        // A listening socket shut down for reading is how a stop wakes accept().
        libc::EINVAL if step == Step::Accept => say(
            "the listening socket was shut down: the server is stopping",
            "서버 종료 중: 서버 소켓을 shutdown 해서 더는 연결을 받지 않습니다",
        ),
        libc::EMSGSIZE => say(
            "the datagram is too large to send",
            "데이터그램이 너무 커서 보낼 수 없습니다",
        ),
        _ => say("errno tells why", "errno가 원인을 알려 줍니다"),
    }
}

/// What a ring completion means, and what io_uring does there that the textbook's call
/// does not.
fn uring_explain(op: UringOp, result: i32, linked: bool, lang: Lang) -> String {
    let say = |en: &str, ko: &str| say(lang, en, ko);
    if result == -libc::ECANCELED {
        return say(
            "cancelled: the call linked before it failed, or the server cancelled it",
            "취소됨: 앞에 연결(link)된 요청이 실패했거나 서버가 취소했습니다",
        );
    }
    match op {
        UringOp::Accept if result < 0 => say(
            "the kernel's accept failed: the server accepts again (or backs off), as after accept()",
            "커널의 연결 수락이 실패했습니다: accept() 실패 때처럼 다시 받거나 잠시 쉽니다",
        ),
        UringOp::Accept => say(
            "accepted by the kernel: a NEW descriptor for this client, with no accept() call",
            "커널이 연결을 수락했습니다: accept() 호출 없이 이 클라이언트의 새 소켓이 생깁니다",
        ),
        UringOp::Send if result < 0 => say(
            "the send failed: the calls linked after it are cancelled",
            "송신 실패: 뒤에 연결(link)된 요청은 취소됩니다",
        ),
        UringOp::Send if linked => say(
            "send, held by MSG_MORE, the check linked after it: the reply leaves with the FIN that follows",
            "MSG_MORE로 보류한 송신, 뒤에 확인 요청을 연결: 응답은 이어지는 FIN과 한 패킷으로 갑니다",
        ),
        UringOp::Send => say(
            "send, held by MSG_MORE: the reply leaves with the FIN that follows",
            "MSG_MORE로 보류한 송신: 응답은 이어지는 FIN과 한 패킷으로 갑니다",
        ),
        UringOp::Shutdown => say(
            "half-close from the ring: linked, it runs only once the send before it sent everything",
            "링에서 한 Half-close: 앞의 송신이 모두 끝나야만 실행됩니다 (IOSQE_IO_LINK)",
        ),
        UringOp::CheckUnread if result == -libc::EAGAIN => say(
            "nothing unread yet: a half-close next, whose FIN takes the reply out; then close()",
            "아직 읽지 않은 입력이 없습니다: 다음의 Half-close가 FIN과 함께 응답을 내보내고, 그 뒤에 close()",
        ),
        UringOp::CheckUnread => say(
            "the check, from the ring: did the client send anything never read? (it never waits)",
            "링에서 한 확인: 클라이언트가 보낸 것 중 읽지 않은 입력이 있는지 봅니다 (기다리지 않음)",
        ),
        UringOp::Recv if result == 0 => say(
            "EOF: the peer closed its side; the kernel waited for it, the server made no call",
            "EOF: 상대가 자기 쪽을 닫았습니다. 기다린 것은 커널이고 서버는 호출하지 않았습니다",
        ),
        UringOp::Recv => say(
            "received into a buffer the kernel picked when data came: no buffer waits per idle client",
            "데이터가 올 때 커널이 고른 버퍼로 받았습니다: 기다리는 클라이언트마다 버퍼를 두지 않습니다",
        ),
        UringOp::Close => say(
            "close from the ring, submitted with other clients' calls in one system call",
            "링에서 한 소켓 닫기: 다른 클라이언트의 요청과 함께 시스템 콜 한 번으로 넘겼습니다",
        ),
        UringOp::Cancel => say(
            "cancel the socket's pending call before closing it: no late result may name a reused descriptor",
            "닫기 전에 이 소켓의 대기 중인 요청을 취소합니다: 재사용된 번호로 늦은 결과가 오지 않게",
        ),
        UringOp::Wake => say(
            "the stop's wake-up: an eventfd read by the ring ends the wait in io_uring_enter()",
            "종료 요청 깨우기: 링이 읽는 eventfd가 io_uring_enter()의 대기를 끝냅니다",
        ),
        UringOp::ProvideBuffers => say(
            "receive buffers handed to the kernel, to pick from when data comes",
            "수신 버퍼를 커널에 넘깁니다. 데이터가 오면 커널이 여기서 골라 씁니다",
        ),
    }
}
