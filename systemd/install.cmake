# Runs at install time (cmake --install, cpack), when the install prefix is known: the units name
# the installed binaries, so they are written for the prefix actually used, and the directories
# follow it. Set by the caller (CMakeLists.txt): TCPEDU_SOURCE_DIR, TCPEDU_BINARY_DIR,
# TCPEDU_BINDIR, TCPEDU_SBINDIR, TCPEDU_SYSCONFDIR, TCPEDU_LIBDIR (as GNUInstallDirs has them,
# relative or not), TCPEDU_LIBRARY_ARCHITECTURE, TCPEDU_PLUGINS (the built handler plug-ins),
# TCPEDU_STRIP, and from pkg-config systemd, when it was found: TCPEDU_SYSTEMD_PREFIX,
# TCPEDU_SYSTEMD_UNITDIR, TCPEDU_SYSUSERSDIR, TCPEDU_TMPFILESDIR, TCPEDU_CATALOGDIR.

string(REGEX REPLACE "(.)/+$" "\\1" prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "/")
  set(under "")
else()
  set(under "${prefix}")
endif()

function(tcpedu_dir var dir)
  if(IS_ABSOLUTE "${dir}")
    set(${var} "${dir}" PARENT_SCOPE)
  else()
    set(${var} "${under}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

tcpedu_dir(TCPEDU_SBINDIR "${TCPEDU_SBINDIR}")
tcpedu_dir(TCPEDU_BINDIR "${TCPEDU_BINDIR}")

# GNUInstallDirs' rule for LIBDIR, applied to this prefix: lib/<multiarch> on Debian for / and
# /usr (/usr/lib/x86_64-linux-gnu, where the manual pages say the example plug-ins are).
set(libdir "${TCPEDU_LIBDIR}")
if(NOT IS_ABSOLUTE "${libdir}" AND TCPEDU_LIBRARY_ARCHITECTURE AND EXISTS /etc/debian_version
   AND (prefix STREQUAL "/" OR prefix STREQUAL "/usr"))
  set(libdir "lib/${TCPEDU_LIBRARY_ARCHITECTURE}")
endif()
tcpedu_dir(libdir "${libdir}")
file(INSTALL DESTINATION "${libdir}/tcpedu/handlers" TYPE MODULE FILES ${TCPEDU_PLUGINS})
if(CMAKE_INSTALL_DO_STRIP AND TCPEDU_STRIP)
  foreach(plugin IN LISTS TCPEDU_PLUGINS)
    get_filename_component(name "${plugin}" NAME)
    execute_process(COMMAND "${TCPEDU_STRIP}" --strip-unneeded "$ENV{DESTDIR}${libdir}/tcpedu/handlers/${name}")
  endforeach()
endif()

# GNUInstallDirs' rule for CMAKE_INSTALL_FULL_SYSCONFDIR, applied to this prefix: /etc for the
# prefixes / and /usr, /etc/opt/... for /opt/..., PREFIX/etc otherwise. tcpedud reads
# /etc/tcpedud/tcpedud.conf; under another prefix the file installed there is only a copy of its
# embedded default.
if(IS_ABSOLUTE "${TCPEDU_SYSCONFDIR}")
  set(sysconfdir "${TCPEDU_SYSCONFDIR}")
elseif(prefix STREQUAL "/" OR prefix STREQUAL "/usr")
  set(sysconfdir "/${TCPEDU_SYSCONFDIR}")
elseif(prefix MATCHES "^/opt/")
  set(sysconfdir "/${TCPEDU_SYSCONFDIR}${prefix}")
else()
  set(sysconfdir "${under}/${TCPEDU_SYSCONFDIR}")
endif()

# systemd's own directories (pkg-config systemd: /lib/systemd/system on Debian 12) when installing
# for systemd's prefix; otherwise under the prefix, where /usr/local/lib/... is in systemd's search
# path too and a scratch prefix keeps everything inside it.
if(TCPEDU_SYSTEMD_UNITDIR AND prefix STREQUAL "${TCPEDU_SYSTEMD_PREFIX}")
  set(unitdir "${TCPEDU_SYSTEMD_UNITDIR}")
  set(sysusersdir "${TCPEDU_SYSUSERSDIR}")
  set(tmpfilesdir "${TCPEDU_TMPFILESDIR}")
  set(catalogdir "${TCPEDU_CATALOGDIR}")
else()
  set(unitdir "${under}/lib/systemd/system")
  set(sysusersdir "${under}/lib/sysusers.d")
  set(tmpfilesdir "${under}/lib/tmpfiles.d")
  set(catalogdir "${under}/lib/systemd/catalog")
endif()

set(staging "${TCPEDU_BINARY_DIR}/systemd-install")
file(MAKE_DIRECTORY "${staging}")
configure_file("${TCPEDU_SOURCE_DIR}/systemd/tcpedud.service.in" "${staging}/tcpedud.service" @ONLY)
file(INSTALL DESTINATION "${unitdir}" TYPE FILE FILES "${staging}/tcpedud.service" "${TCPEDU_SOURCE_DIR}/systemd/tcpedud.socket")
file(INSTALL DESTINATION "${sysusersdir}" TYPE FILE RENAME tcpedud.conf FILES "${TCPEDU_SOURCE_DIR}/systemd/tcpedud.sysusers")
file(INSTALL DESTINATION "${tmpfilesdir}" TYPE FILE RENAME tcpedud.conf FILES "${TCPEDU_SOURCE_DIR}/systemd/tcpedud.tmpfiles")
file(INSTALL DESTINATION "${catalogdir}" TYPE FILE FILES "${TCPEDU_SOURCE_DIR}/systemd/tcpedud.catalog")

# The configuration is the administrator's once installed: an existing file is never replaced.
set(conf "$ENV{DESTDIR}${sysconfdir}/tcpedud/tcpedud.conf")
if(EXISTS "${conf}")
  message(STATUS "Keeping: ${conf} (the shipped one is ${TCPEDU_SOURCE_DIR}/config/tcpedud.conf)")
else()
  file(INSTALL DESTINATION "${sysconfdir}/tcpedud" TYPE FILE FILES "${TCPEDU_SOURCE_DIR}/config/tcpedud.conf")
endif()
