#include "script.h"

#include "chatview.h"
#include "groupspage.h"
#include "mainwindow.h"
#include "session.h"

#include "feige.h"

#include <QApplication>
#include <QJsonArray>
#include <QPixmap>
#include <QTextStream>
#include <QTimer>

#include <cstdio>

Script::Script(MainWindow *window, Options options, QObject *parent)
    : QObject(parent), window_(window), o_(std::move(options)), sendTimer_(new QTimer(this)),
      pollTimer_(new QTimer(this)) {
    sendTimer_->setInterval(o_.intervalMs);
    pollTimer_->setInterval(300);
    connect(sendTimer_, &QTimer::timeout, this, &Script::sendNext);
    connect(pollTimer_, &QTimer::timeout, this, &Script::pollFriendship);
    connect(window_, &MainWindow::loggedIn, this, &Script::onLoggedIn);
    connect(window_, &MainWindow::loginFailed, this, &Script::onLoginFailed);
    connect(window_, &MainWindow::messageReceived, this, &Script::onMessage);
    connect(window_->chat(), &ChatView::sendState, this, &Script::onSendState);
    connect(window_->chat(), &ChatView::downloaded, this, &Script::onDownloaded);
    connect(window_->session(), &Session::stateChanged, this, &Script::onState);
    connect(window_, &MainWindow::pushReceived, this, &Script::onPush);
}

void Script::log(const QString &line) {
    std::fprintf(stderr, "qt-chat: %s\n", qPrintable(line));
    std::fflush(stderr);
}

void Script::start() {
    if (!o_.receivedFile.isEmpty()) {
        received_.setFileName(o_.receivedFile);
        if (!received_.open(QIODevice::WriteOnly | QIODevice::Truncate | QIODevice::Text)) {
            finish(1, QStringLiteral("cannot write %1").arg(o_.receivedFile));
            return;
        }
    }
    if (!o_.sentFile.isEmpty()) {
        sent_.setFileName(o_.sentFile);
        if (!sent_.open(QIODevice::WriteOnly | QIODevice::Truncate | QIODevice::Text)) {
            finish(1, QStringLiteral("cannot write %1").arg(o_.sentFile));
            return;
        }
    }
    QTimer::singleShot(o_.timeoutS * 1000, this, [this] {
        finish(1, QStringLiteral("timed out: %1 of %2 sent and acked, %3 of %4 received")
                      .arg(acked_).arg(sendsWanted()).arg(receivedCount_).arg(o_.expect));
    });
    if (!window_->start()) // resumes a saved session, else shows the login page
        onLoginFailed(QStringLiteral("no saved session"));
}

void Script::onLoginFailed(const QString &error) {
    if (o_.resumeOnly) {
        finish(1, QStringLiteral("the saved session did not resume: %1").arg(error));
        return;
    }
    log(QStringLiteral("login: %1").arg(error));
    const QString &server = o_.server;
    if (!triedRegister_) {
        triedRegister_ = true;
        window_->registerAndLogin(server, o_.user, o_.password, QString());
    } else if (error.startsWith(QLatin1String("USERNAME_TAKEN"))) {
        window_->login(server, o_.user, o_.password);
    } else {
        finish(1, QStringLiteral("cannot log in: %1").arg(error));
    }
}

void Script::onLoggedIn(const QString &userId, const QString &how) {
    log(QStringLiteral("logged in as %1 (user %2) by %3").arg(o_.user, userId, how));
    if (o_.resumeOnly) {
        finish(how == QLatin1String("resume") ? 0 : 1, QStringLiteral("resume checked"));
        return;
    }
    resolvePeer();
}

void Script::resolvePeer() {
    window_->session()->call("get_user", QJsonObject{{"username", o_.peer}},
                             [this](int status, const QJsonObject &json) {
                                 if (status != FEIGE_OK) { // not registered yet: ask again
                                     QTimer::singleShot(300, this, &Script::resolvePeer);
                                     return;
                                 }
                                 peerId_ = json.value("user_id").toString();
                                 befriend();
                             });
}

void Script::befriend() {
    window_->session()->call("friend_request", QJsonObject{{"to_user", peerId_}},
                             [this](int status, const QJsonObject &json) {
                                 if (status != FEIGE_OK)
                                     log(QStringLiteral("friend_request: %1").arg(Session::errorText(json)));
                                 pollFriendship();
                                 pollTimer_->start();
                             });
}

void Script::pollFriendship() {
    if (chatting_)
        return;
    Session *s = window_->session();
    // Accept every request received (the peer's, if it asked first); then look for the
    // friendship with the peer.
    s->call("friend_requests", {}, [s](int status, const QJsonObject &json) {
        if (status != FEIGE_OK)
            return;
        for (const QJsonValue &v : json.value("incoming").toArray())
            s->call("friend_respond", QJsonObject{{"request_id", v.toObject().value("request_id")},
                                                  {"accept", true}});
    });
    s->call("friends", {}, [this](int status, const QJsonObject &json) {
        if (status != FEIGE_OK || chatting_)
            return;
        for (const QJsonValue &v : json.value("friends").toArray()) {
            const QJsonObject f = v.toObject();
            if (f.value("user").toObject().value("user_id").toString() == peerId_) {
                beginChat(f.value("conversation_id").toString());
                return;
            }
        }
    });
}

void Script::beginChat(const QString &conversationId) {
    chatting_ = true;
    pollTimer_->stop();
    conversationId_ = conversationId;
    log(QStringLiteral("friends with %1; conversation %2").arg(o_.peer, conversationId));
    window_->openChat(conversationId, peerId_, o_.peer);
    if (o_.offlineSend) {
        log(QStringLiteral("offline: waiting for the server to go"));
        return;
    }
    if (sendsWanted() > 0)
        sendTimer_->start();
    checkDone();
}

void Script::onState(const QJsonObject &state) {
    if (!o_.offlineSend || !chatting_ || offlineQueued_ ||
        state.value("state").toString() != QLatin1String("disconnected"))
        return;
    // Queued in the SDK's outbox while there is no server; the close runs after the queueing
    // on the sender thread, so the file holds them all when the application exits.
    offlineQueued_ = true;
    for (int i = 0; i < o_.count; ++i)
        window_->chat()->sendText(QStringLiteral("%1 #%2").arg(o_.user).arg(o_.first + i));
    finish(0, QStringLiteral("queued %1 messages offline").arg(o_.count));
}

void Script::onPush(const QJsonObject &push) {
    // Sends of an earlier run, replayed from the outbox file: not in this run's view.
    if (o_.waitOutbox > 0 && push.value("type").toString() == QLatin1String("outbox") &&
        push.value("state").toString() == QLatin1String("sent")) {
        ++replayed_;
        log(QStringLiteral("outbox replay sent: seq %1").arg(push.value("seq").toString()));
        checkDone();
    }
}

void Script::sendNext() {
    if (nextToSend_ > o_.count) {
        sendTimer_->stop();
        if (!o_.sendFile.isEmpty() && !fileQueued_) {
            fileQueued_ = true; // uploaded, then sent after every numbered message
            window_->chat()->sendFile(o_.sendFile);
        }
        return;
    }
    window_->chat()->sendText(QStringLiteral("%1 #%2").arg(o_.user).arg(o_.first + nextToSend_ - 1));
    ++nextToSend_;
}

void Script::onSendState(const QString &clientMsgId, const QString &state, const QJsonObject &json) {
    if (state == QLatin1String("sent") && clientMsgId == groupMsgId_) {
        log(QStringLiteral("group message sent"));
        groupDone_ = true;
        checkDone();
    } else if (state == QLatin1String("sent")) {
        ++acked_;
        if (sent_.isOpen()) {
            QTextStream(&sent_) << json.value("seq").toString() << '\t' << clientMsgId << '\n';
            sent_.flush();
        }
        checkDone();
    } else if (state == QLatin1String("failed")) {
        // The same client_msg_id again: the server stores it once.
        log(QStringLiteral("send %1 failed (%2); retrying").arg(clientMsgId, Session::errorText(json)));
        QTimer::singleShot(500, this, [this, clientMsgId] { window_->chat()->retry(clientMsgId); });
    }
}

void Script::onMessage(const QJsonObject &m) {
    if (peerId_.isEmpty() || m.value("from_user").toString() != peerId_)
        return;
    if (m.value("to_user").toString() != window_->self()) {
        // Not the 1:1 chat (which may start before this side saw the friendship): a group
        // (its system notices aside).
        if (m.value("kind").toString() != QLatin1String("system")) {
            ++groupReceived_;
            log(QStringLiteral("group message: %1").arg(m.value("text").toString()));
            checkDone();
        }
        return;
    }
    ++receivedCount_;
    const QJsonObject file = m.value("file").toObject();
    const QString text = file.isEmpty() ? m.value("text").toString()
                                        : QStringLiteral("file:") + file.value("name").toString();
    if (received_.isOpen()) {
        QTextStream(&received_) << m.value("from_user").toString() << '\t'
                                << m.value("conversation_id").toString() << '\t'
                                << m.value("seq").toString() << '\t' << text << '\n';
        received_.flush();
    }
    if (!file.isEmpty() && !o_.downloadDir.isEmpty()) {
        ++downloadsPending_;
        window_->chat()->downloadTo(file.value("file_id").toString(),
                                    o_.downloadDir + QLatin1Char('/') + file.value("name").toString());
    }
    checkDone();
}

void Script::onDownloaded(const QString &, const QString &path, bool ok) {
    if (!ok) {
        finish(1, QStringLiteral("download to %1 failed").arg(path));
        return;
    }
    log(QStringLiteral("downloaded %1").arg(path));
    --downloadsPending_;
    checkDone();
}

void Script::checkDone() {
    if (!chatting_ || paging_ || acked_ < sendsWanted() || receivedCount_ < o_.expect ||
        downloadsPending_ > 0 || groupReceived_ < o_.expectGroup || replayed_ < o_.waitOutbox ||
        o_.offlineSend)
        return;
    if (!o_.group.isEmpty() && !groupDone_) {
        groupHello();
        return;
    }
    log(QStringLiteral("done: %1 sent and acked, %2 received").arg(acked_).arg(receivedCount_));
    if (o_.pageHistory)
        pageHistory();
    else
        finish(0, QStringLiteral("ok"));
}

void Script::groupHello() {
    if (groupStarted_)
        return;
    groupStarted_ = true;
    GroupsPage *groups = window_->groupsPage();
    connect(groups, &GroupsPage::createFailed, this,
            [this](const QString &error) { finish(1, QStringLiteral("group_create: %1").arg(error)); });
    connect(groups, &GroupsPage::created, this, [this](const QString &conversationId) {
        log(QStringLiteral("group %1 created: conversation %2").arg(o_.group, conversationId));
        groupMsgId_ = window_->chat()->sendText(QStringLiteral("%1: hello").arg(o_.group));
    });
    groups->createGroup(o_.group, {peerId_});
}

void Script::pageHistory() {
    // Reopen the conversation: the view starts from the newest page; page back to the first.
    paging_ = true;
    connect(window_->chat(), &ChatView::historyLoaded, this, &Script::onHistoryPage);
    window_->chat()->clear();
    window_->openChat(conversationId_, peerId_, o_.peer);
}

void Script::onHistoryPage(bool ok, bool hasMore) {
    if (!ok) {
        finish(1, QStringLiteral("history: a page failed"));
        return;
    }
    if (hasMore) {
        window_->chat()->loadOlder();
        return;
    }
    // Every message of both, once, oldest first: seqs 1, 2, ... with no gap.
    const QList<qulonglong> seqs = window_->chat()->shownSeqs();
    const int want = acked_ + receivedCount_;
    for (int i = 0; i < seqs.size(); ++i) {
        if (seqs[i] != qulonglong(i + 1)) {
            finish(1, QStringLiteral("history: row %1 shows seq %2").arg(i).arg(seqs[i]));
            return;
        }
    }
    if (seqs.size() != want) {
        finish(1, QStringLiteral("history: %1 messages shown, not %2").arg(seqs.size()).arg(want));
        return;
    }
    finish(0, QStringLiteral("history paged back: %1 messages, seqs 1..%1").arg(want));
}

void Script::finish(int code, const QString &why) {
    if (finished_)
        return;
    finished_ = true;
    log(why);
    sendTimer_->stop();
    pollTimer_->stop();
    if (!o_.screenshot.isEmpty()) {
        // Let the last messages reach the screen first.
        QApplication::processEvents();
        if (!window_->grab().save(o_.screenshot))
            log(QStringLiteral("cannot save the screenshot %1").arg(o_.screenshot));
    }
    received_.close();
    sent_.close();
    connect(window_->session(), &Session::closed, qApp, [code] { QApplication::exit(code); });
    window_->session()->closeAsync();
}
