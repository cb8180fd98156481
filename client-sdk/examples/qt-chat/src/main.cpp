// qt-chat: a Qt 6 Widgets desktop client of Feige on the C SDK (libfeige).
//
//   qt-chat                        the interactive client
//   qt-chat --script --server 127.0.0.1:7900 --user alice --peer bob --count 100
//           --expect 100 --received alice.txt --screenshot shot.png
//                                  the scripted mode (see script.h), e.g. headless with
//                                  QT_QPA_PLATFORM=offscreen
#include "mainwindow.h"
#include "script.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QSettings>

#include <memory>

int main(int argc, char **argv) {
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("qt-chat"));
    QApplication::setOrganizationName(QStringLiteral("feige"));

    QCommandLineParser cli;
    cli.setApplicationDescription(QStringLiteral("Feige desktop client"));
    cli.addHelpOption();
    const QCommandLineOption settingsOpt("settings", "Keep the session in this INI file instead of the user's settings.", "file");
    const QCommandLineOption scriptOpt("script", "Scripted mode (for tests): log in, chat with --peer, exit.");
    const QCommandLineOption serverOpt("server", "Server host:port for the scripted login.", "addr", "127.0.0.1:7900");
    const QCommandLineOption userOpt("user", "Username (registered when missing).", "name");
    const QCommandLineOption passwordOpt("password", "Password.", "password", "scripted-pass-1");
    const QCommandLineOption peerOpt("peer", "The username to chat with.", "name");
    const QCommandLineOption countOpt("count", "Messages to send to the peer.", "n", "0");
    const QCommandLineOption expectOpt("expect", "Messages to receive from the peer.", "n", "0");
    const QCommandLineOption intervalOpt("interval-ms", "Pause between two sends.", "ms", "10");
    const QCommandLineOption timeoutOpt("timeout", "Give up after this many seconds.", "s", "60");
    const QCommandLineOption receivedOpt("received", "Write each received message to this file.", "file");
    const QCommandLineOption sentOpt("sent", "Write each acked send to this file.", "file");
    const QCommandLineOption shotOpt("screenshot", "Save the main window as PNG when done.", "file");
    const QCommandLineOption resumeOpt("resume-only", "Scripted: the saved session must resume; then exit.");
    const QCommandLineOption fileOpt("send-file", "Scripted: send this file after the messages.", "path");
    const QCommandLineOption downloadOpt("download-dir", "Scripted: download each file from the peer into this directory.", "dir");
    const QCommandLineOption groupOpt("group", "Scripted: when done, create this group with the peer and send a hello in it.", "name");
    const QCommandLineOption expectGroupOpt("expect-group", "Scripted: group messages to receive from the peer.", "n", "0");
    const QCommandLineOption firstOpt("first", "Scripted: the number of the first message.", "n", "1");
    const QCommandLineOption offlineOpt("offline-send", "Scripted: once the server is gone, queue the messages in the outbox and exit.");
    const QCommandLineOption waitOutboxOpt("wait-outbox", "Scripted: wait for this many sends of an earlier run's outbox to go out.", "n", "0");
    const QCommandLineOption pagingOpt("page-history", "Scripted: when done, page the chat's history back to its first message.");
    cli.addOptions({settingsOpt, scriptOpt, serverOpt, userOpt, passwordOpt, peerOpt, countOpt,
                    expectOpt, intervalOpt, timeoutOpt, receivedOpt, sentOpt, shotOpt, resumeOpt,
                    pagingOpt, fileOpt, downloadOpt, groupOpt, expectGroupOpt, firstOpt,
                    offlineOpt, waitOutboxOpt});
    cli.process(app);

    std::unique_ptr<QSettings> settings;
    if (cli.isSet(settingsOpt))
        settings = std::make_unique<QSettings>(cli.value(settingsOpt), QSettings::IniFormat);
    else
        settings = std::make_unique<QSettings>();

    MainWindow window(settings.get());
    window.resize(960, 640);
    window.show();

    std::unique_ptr<Script> script;
    if (cli.isSet(scriptOpt)) {
        Script::Options o;
        o.server = cli.value(serverOpt);
        o.user = cli.value(userOpt);
        o.password = cli.value(passwordOpt);
        o.peer = cli.value(peerOpt);
        o.count = cli.value(countOpt).toInt();
        o.expect = cli.value(expectOpt).toInt();
        o.intervalMs = cli.value(intervalOpt).toInt();
        o.timeoutS = cli.value(timeoutOpt).toInt();
        o.receivedFile = cli.value(receivedOpt);
        o.sentFile = cli.value(sentOpt);
        o.screenshot = cli.value(shotOpt);
        o.resumeOnly = cli.isSet(resumeOpt);
        o.pageHistory = cli.isSet(pagingOpt);
        o.sendFile = cli.value(fileOpt);
        o.downloadDir = cli.value(downloadOpt);
        o.group = cli.value(groupOpt);
        o.expectGroup = cli.value(expectGroupOpt).toInt();
        o.first = cli.value(firstOpt).toInt();
        o.offlineSend = cli.isSet(offlineOpt);
        o.waitOutbox = cli.value(waitOutboxOpt).toInt();
        if (o.user.isEmpty() || (!o.resumeOnly && o.peer.isEmpty()))
            cli.showHelp(2);
        script = std::make_unique<Script>(&window, o);
        script->start();
    } else {
        window.start();
    }
    return QApplication::exec();
}
