#include "mainwindow.h"

#include "chatview.h"
#include "conversationlist.h"
#include "friendspage.h"
#include "groupspage.h"
#include "loginpage.h"
#include "profilepage.h"
#include "session.h"
#include "util.h"

#include "feige.h"

#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QFileInfo>
#include <QRegularExpression>
#include <QLabel>
#include <QPushButton>
#include <QSettings>
#include <QSplitter>
#include <QStackedWidget>
#include <QStatusBar>
#include <QTabWidget>
#include <QTimer>

MainWindow::MainWindow(QSettings *settings, QWidget *parent)
    : QMainWindow(parent), settings_(settings), session_(new Session(this)) {
    setWindowTitle(tr("Feige"));
    stack_ = new QStackedWidget(this);
    loginPage_ = new LoginPage(stack_);
    conversations_ = new ConversationList(session_, &names_);
    friends_ = new FriendsPage(session_, &names_);
    groups_ = new GroupsPage(session_, friends_);
    profile_ = new ProfilePage(session_);
    chat_ = new ChatView(session_, &names_);
    tabs_ = new QTabWidget;
    tabs_->addTab(conversations_, tr("Chats"));
    tabs_->addTab(friends_, tr("Friends"));
    tabs_->addTab(groups_, tr("Groups"));
    tabs_->addTab(profile_, tr("Profile"));
    auto *split = new QSplitter(stack_);
    split->addWidget(tabs_);
    split->addWidget(chat_);
    split->setStretchFactor(1, 1);
    split->setSizes({320, 580});
    stack_->addWidget(loginPage_);
    stack_->addWidget(split);
    setCentralWidget(stack_);
    state_ = new QLabel(tr("not connected"));
    statusBar()->addWidget(state_, 1);
    // For when the network is back: ends the SDK's reconnect backoff at once.
    auto *reconnect = new QPushButton(tr("Reconnect now"));
    statusBar()->addPermanentWidget(reconnect);
    connect(reconnect, &QPushButton::clicked, this, [this] {
        session_->call("reconnect_now", {}, [this](int status, const QJsonObject &json) {
            if (status != FEIGE_OK)
                statusBar()->showMessage(Session::errorText(json), 5000);
        });
    });
    markReadTimer_ = new QTimer(this);
    markReadTimer_->setSingleShot(true);
    markReadTimer_->setInterval(300);

    loginPage_->setServer(settings_->value("server", "127.0.0.1:7900").toString());
    loginPage_->setUsername(settings_->value("username").toString());

    connect(loginPage_, &LoginPage::loginRequested, this, &MainWindow::login);
    connect(loginPage_, &LoginPage::registerRequested, this, &MainWindow::registerAndLogin);
    connect(session_, &Session::pushed, this, &MainWindow::onPush);
    connect(session_, &Session::stateChanged, this, &MainWindow::onState);
    connect(conversations_, &ConversationList::openRequested, this, &MainWindow::openChat);
    connect(friends_, &FriendsPage::openChat, this, &MainWindow::openChat);
    connect(groups_, &GroupsPage::openChat, this, &MainWindow::openChat);
    connect(friends_, &FriendsPage::presence, conversations_, &ConversationList::setPresence);
    connect(friends_, &FriendsPage::friendsChanged, groups_, &GroupsPage::refreshFriends);
    connect(groups_, &GroupsPage::groupsChanged, conversations_, &ConversationList::reload);
    connect(chat_, &ChatView::readUpTo, this, &MainWindow::queueMarkRead);
    connect(chat_, &ChatView::sendState, this,
            [this](const QString &, const QString &state, const QJsonObject &json) {
                if (state == QLatin1String("failed"))
                    statusBar()->showMessage(tr("send failed: %1").arg(Session::errorText(json)), 5000);
            });
    connect(markReadTimer_, &QTimer::timeout, this, &MainWindow::flushMarkRead);
    connect(profile_, &ProfilePage::logoutRequested, this, &MainWindow::logout);
}

bool MainWindow::openSession(const QString &server) {
    // The SDK's outbox file: beside the settings, one per server (a client being closed for
    // another server may still hold its own).
    const QFileInfo settingsFile(settings_->fileName());
    QDir().mkpath(settingsFile.absolutePath());
    QString tag = server;
    tag.replace(QRegularExpression(QStringLiteral("[^A-Za-z0-9.-]")), QStringLiteral("_"));
    const QString outbox = settingsFile.absolutePath() + QLatin1Char('/') +
                           settingsFile.completeBaseName() + QLatin1Char('-') + tag +
                           QStringLiteral(".outbox");
    QString error;
    if (!session_->open(server, outbox, &error)) {
        showLogin(tr("Cannot use server %1: %2").arg(server, error));
        return false;
    }
    return true;
}

bool MainWindow::start() {
    const QString server = settings_->value("server").toString();
    const QString token = settings_->value("token").toString();
    if (server.isEmpty() || token.isEmpty()) {
        showLogin(QString());
        return false;
    }
    if (!openSession(server))
        return false;
    loginPage_->setBusy(tr("Resuming the session on %1…").arg(server));
    session_->call("resume", QJsonObject{{"token", token}}, [this](int status, const QJsonObject &json) {
        if (status == FEIGE_OK) {
            enterMain(json, QStringLiteral("resume"));
            return;
        }
        if (Session::errorCode(json) == QLatin1String("INVALID_TOKEN"))
            settings_->remove("token");
        showLogin(tr("Could not resume: %1").arg(Session::errorText(json)));
        emit loginFailed(Session::errorText(json));
    });
    return true;
}

void MainWindow::login(const QString &server, const QString &username, const QString &password) {
    if (!openSession(server))
        return;
    loginPage_->setBusy(tr("Logging in…"));
    const QJsonObject params{{"username", username}, {"password", password}};
    session_->call("login", params, [this, server, username](int status, const QJsonObject &json) {
        if (status != FEIGE_OK) {
            showLogin(tr("Login failed: %1").arg(Session::errorText(json)));
            emit loginFailed(Session::errorText(json));
            return;
        }
        settings_->setValue("server", server);
        settings_->setValue("username", username);
        settings_->setValue("token", json.value("token").toString());
        settings_->sync();
        enterMain(json, QStringLiteral("login"));
    });
}

void MainWindow::registerAndLogin(const QString &server, const QString &username,
                                  const QString &password, const QString &nickname) {
    if (!openSession(server))
        return;
    loginPage_->setBusy(tr("Registering…"));
    QJsonObject params{{"username", username}, {"password", password}};
    if (!nickname.isEmpty())
        params.insert("nickname", nickname);
    session_->call("register", params, [=](int status, const QJsonObject &json) {
        if (status != FEIGE_OK) {
            showLogin(tr("Registration failed: %1").arg(Session::errorText(json)));
            emit loginFailed(Session::errorText(json));
            return;
        }
        if (json.value("pending").toBool()) {
            showLogin(tr("Registered; an administrator must approve the account first."));
            emit loginFailed(QStringLiteral("PENDING"));
            return;
        }
        login(server, username, password);
    });
}

void MainWindow::enterMain(const QJsonObject &result, const QString &how) {
    const QJsonObject profile = result.value("profile").toObject();
    self_ = result.value("user_id").toString();
    names_.insert(self_, util::userName(profile));
    chat_->setSelf(self_);
    conversations_->setSelf(self_);
    profile_->showProfile(profile);
    conversations_->reload();
    friends_->reload();
    groups_->reload();
    stack_->setCurrentIndex(1);
    setWindowTitle(tr("Feige — %1").arg(util::userName(profile)));
    emit loggedIn(self_, how);
}

void MainWindow::showLogin(const QString &message) {
    self_.clear();
    chat_->clear();
    conversations_->setOpen(QString());
    stack_->setCurrentIndex(0);
    setWindowTitle(tr("Feige"));
    loginPage_->setMessage(message);
}

void MainWindow::openChat(const QString &conversationId, const QString &peerUser, const QString &title) {
    if (!conversationId.isEmpty() && conversationId == chat_->conversationId())
        return;
    chat_->open(conversationId, peerUser, title);
    conversations_->setOpen(conversationId);
}

void MainWindow::onPush(const QJsonObject &push) {
    const QString type = push.value("type").toString();
    if (type == QLatin1String("message")) {
        chat_->onMessage(push); // first: it learns the id of a new 1:1 conversation
        conversations_->setOpen(chat_->conversationId());
        conversations_->onMessage(push);
        emit messageReceived(push);
        return;
    }
    emit pushReceived(push);
    if (type == QLatin1String("outbox")) {
        chat_->onOutbox(push);
    } else if (type == QLatin1String("progress")) {
        chat_->onProgress(push);
    } else if (type == QLatin1String("kicked")) {
        if (push.value("code").toString() == QLatin1String("INVALID_TOKEN")) {
            settings_->remove("token");
            showLogin(tr("Your session ended: %1").arg(push.value("reason").toString()));
        }
    } else if (type == QLatin1String("read_position")) {
        conversations_->setUnread(push.value("conversation_id").toString(), push.value("unread").toInt());
    } else if (type == QLatin1String("profile_updated")) {
        profile_->showProfile(push);
    } else if (type.startsWith(QLatin1String("group_"))) {
        groups_->onPush(push);
    } else {
        friends_->onPush(push);
    }
}

void MainWindow::onState(const QJsonObject &state) {
    const QString name = state.value("state").toString();
    if (name == QLatin1String("logged_out") && !self_.isEmpty()) {
        // The session ended without this window's logout (revoked, expired, not resumable):
        // its token is of no more use.
        settings_->remove("token");
        showLogin(tr("Logged out (%1 %2).")
                      .arg(state.value("reason").toString(), state.value("code").toString()));
    }
    QString text = name;
    if (state.contains("logged_in") && name != QLatin1String("logged_in") &&
        name != QLatin1String("logged_out"))
        text += state.value("logged_in").toBool() ? tr(", logged in") : tr(", logged out");
    if (state.contains("retry_in_ms"))
        text += tr(" (retry in %1 ms)").arg(state.value("retry_in_ms").toInt());
    if (state.contains("error"))
        text += QStringLiteral(": ") + state.value("error").toString();
    state_->setText(tr("%1 — %2").arg(session_->server(), text));
}

void MainWindow::queueMarkRead(const QString &conversationId, const QString &seq) {
    const qulonglong s = seq.toULongLong();
    if (conversationId.isEmpty() || s == 0 || s <= markRead_.value(conversationId))
        return;
    markRead_.insert(conversationId, s);
    if (!markReadTimer_->isActive())
        markReadTimer_->start();
}

void MainWindow::flushMarkRead() {
    for (auto it = markRead_.cbegin(); it != markRead_.cend(); ++it) {
        const QJsonObject params{{"conversation_id", it.key()}, {"seq", QString::number(it.value())}};
        session_->call("mark_read", params, [this](int status, const QJsonObject &json) {
            if (status == FEIGE_OK)
                conversations_->setUnread(json.value("conversation_id").toString(),
                                          json.value("unread").toInt());
        });
    }
    markRead_.clear();
}

void MainWindow::logout() {
    session_->call("logout", {}, [](int, const QJsonObject &) {});
    settings_->remove("token");
    showLogin(tr("Logged out."));
}

void MainWindow::closeEvent(QCloseEvent *event) {
    if (closing_) {
        event->accept();
        return;
    }
    // The SDK's graceful close (the last ack) runs on a worker thread; quit when it is done.
    closing_ = true;
    event->ignore();
    hide();
    connect(session_, &Session::closed, qApp, &QApplication::quit);
    session_->closeAsync();
}
