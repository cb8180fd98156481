// MainWindow: the login page, then the conversations, friends, groups and profile tabs beside
// the chat view. Routes the session's pushes and state changes to the parts they concern and
// keeps the server, username and session token in QSettings, so the next start resumes.
#pragma once

#include <QHash>
#include <QJsonObject>
#include <QMainWindow>

class ChatView;
class ConversationList;
class FriendsPage;
class GroupsPage;
class LoginPage;
class ProfilePage;
class QLabel;
class QSettings;
class QStackedWidget;
class QTabWidget;
class QTimer;
class Session;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    /// `settings` (not owned) keeps the server, username and token between runs.
    explicit MainWindow(QSettings *settings, QWidget *parent = nullptr);

    /// Resumes the saved session if there is one (true; loggedIn or loginFailed follows),
    /// else shows the login page (false).
    bool start();
    void login(const QString &server, const QString &username, const QString &password);
    void registerAndLogin(const QString &server, const QString &username, const QString &password,
                          const QString &nickname);
    /// Opens a conversation in the chat view (see ChatView::open).
    void openChat(const QString &conversationId, const QString &peerUser, const QString &title);

    Session *session() const { return session_; }
    ChatView *chat() const { return chat_; }
    FriendsPage *friendsPage() const { return friends_; }
    GroupsPage *groupsPage() const { return groups_; }
    QString self() const { return self_; }

signals:
    /// Logged in (by password or by the saved token); `how` is "login" or "resume".
    void loggedIn(const QString &userId, const QString &how);
    void loginFailed(const QString &error);
    /// Every message push, as the SDK delivered it.
    void messageReceived(const QJsonObject &message);
    /// Every other push.
    void pushReceived(const QJsonObject &push);

protected:
    void closeEvent(QCloseEvent *event) override;

private:
    bool openSession(const QString &server);
    void enterMain(const QJsonObject &loginResult, const QString &how);
    void showLogin(const QString &message);
    void onPush(const QJsonObject &push);
    void onState(const QJsonObject &state);
    void queueMarkRead(const QString &conversationId, const QString &seq);
    void flushMarkRead();
    void logout();

    QSettings *settings_;
    Session *session_;
    QHash<QString, QString> names_; // user id -> display name
    QString self_;
    QStackedWidget *stack_;
    LoginPage *loginPage_;
    QTabWidget *tabs_;
    ConversationList *conversations_;
    FriendsPage *friends_;
    GroupsPage *groups_;
    ProfilePage *profile_;
    ChatView *chat_;
    QLabel *state_;
    QTimer *markReadTimer_;
    QHash<QString, qulonglong> markRead_; // conversation -> seq to mark read, coalesced
    bool closing_ = false;
};
