// Script: the client's scripted mode, for tests and demos. Drives the real window as a user
// would: logs in (registering first if needed, or resuming the saved session), becomes
// friends with the peer, sends numbered messages through the chat view, writes every message
// received to a file, saves a screenshot of the main window and exits when done.
#pragma once

#include <QFile>
#include <QJsonObject>
#include <QObject>
#include <QString>

class MainWindow;
class QTimer;

class Script : public QObject {
    Q_OBJECT
public:
    struct Options {
        QString server;         // "host:port" for a login (a resume uses the saved one)
        QString user;
        QString password;
        QString peer;           // the peer's username
        int count = 0;          // messages to send
        int expect = 0;         // messages to receive from the peer
        int intervalMs = 10;    // between two sends
        int timeoutS = 60;      // give up (exit 1) after this
        QString receivedFile;   // one line per message from the peer: from, conversation, seq, text
        QString sentFile;       // one line per message acked: seq, text
        QString screenshot;     // PNG of the main window, saved when done
        bool resumeOnly = false; // expect the saved session to resume, then exit
        QString sendFile;       // sent after the numbered messages (one more send)
        QString downloadDir;    // each file from the peer is downloaded into it
        QString group;          // when the chat is done: create this group with the peer, say hello
        int expectGroup = 0;    // messages from the peer to receive in other conversations (groups)
        bool pageHistory = false;
        int first = 1;          // the number of the first message ("user #first")
        bool offlineSend = false; // queue the messages once the server is gone, then exit
        int waitOutbox = 0;     // wait for this many sends queued by an earlier run to go out // when done, reopen the chat and page its history back
    };

    Script(MainWindow *window, Options options, QObject *parent = nullptr);
    /// Starts; the application exits with 0 when everything was sent and received, else 1.
    void start();

private:
    void onLoggedIn(const QString &userId, const QString &how);
    void onLoginFailed(const QString &error);
    void resolvePeer();
    void befriend();
    void pollFriendship();
    void beginChat(const QString &conversationId);
    void sendNext();
    void onSendState(const QString &clientMsgId, const QString &state, const QJsonObject &json);
    void onMessage(const QJsonObject &message);
    void onDownloaded(const QString &fileId, const QString &path, bool ok);
    int sendsWanted() const { return o_.count + (o_.sendFile.isEmpty() ? 0 : 1); }
    void checkDone();
    void pageHistory();
    void groupHello();
    void onState(const QJsonObject &state);
    void onPush(const QJsonObject &push);
    void onHistoryPage(bool ok, bool hasMore);
    void finish(int code, const QString &why);
    static void log(const QString &line);

    MainWindow *window_;
    Options o_;
    QFile received_;
    QFile sent_;
    QString peerId_;
    QString conversationId_;
    bool triedRegister_ = false;
    bool chatting_ = false;
    bool finished_ = false;
    bool paging_ = false;
    bool groupStarted_ = false;
    bool groupDone_ = false;
    QString groupMsgId_;
    int groupReceived_ = 0;
    int nextToSend_ = 1;
    int acked_ = 0;
    int receivedCount_ = 0;
    int replayed_ = 0;       // outbox sends of an earlier run reported sent
    bool offlineQueued_ = false;
    int downloadsPending_ = 0;
    bool fileQueued_ = false;
    QTimer *sendTimer_;
    QTimer *pollTimer_;
};
